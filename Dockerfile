# devid-ca with SoftHSM2 (the embedded default HSM). Production mounts the HSM
# vendor's PKCS#11 module instead and sets DEVID_PKCS11_MODULE.

# The CLIs run the JavaScript tsc writes to build/; TypeScript stays in this stage.
FROM node:20-bookworm-slim AS build
WORKDIR /opt/devid-ca
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY . .
RUN npm run build

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 opensc openssl python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/devid-ca
COPY package.json package-lock.json ./
# Install scripts off (prepare would compile again, without TypeScript); pkcs11js alone builds its native part.
RUN npm ci --omit=dev --ignore-scripts && npm rebuild pkcs11js
COPY . .
COPY --from=build /opt/devid-ca/build ./build
ENV DEVID_DATA_DIR=/var/lib/devid-ca \
    DEVID_LISTEN=0.0.0.0:8443 \
    DEVID_HTTP_LISTEN=0.0.0.0:8080
RUN mkdir -p /var/lib/devid-ca && chown node:node /var/lib/devid-ca
VOLUME /var/lib/devid-ca
EXPOSE 8443 8080
USER node
ENTRYPOINT ["./bin/devid-ca"]
CMD ["serve", "--init-if-empty"]
