/**
 * The fast path of the OCSP responder: the bytes of the one CertID of a
 * request shaped as OpenSSL and RFC 5019 clients send it (one Request, no
 * version, no requestor name, no signature; request extensions such as a
 * nonce allowed), or undefined for anything else. It only locates bytes:
 * what it finds must equal, byte for byte, the CertID of a response we
 * signed, and every other request is parsed by @peculiar/asn1-ocsp.
 */
export function certIdOfRequest(der: Buffer): Buffer | undefined {
  const request = span(der, 0, der.length);
  if (!request || request.tag !== 0x30 || request.end !== der.length) return undefined;
  const tbs = span(der, request.start, request.end);
  if (!tbs || tbs.tag !== 0x30 || tbs.end !== request.end) return undefined;
  const list = span(der, tbs.start, tbs.end);
  if (!list || list.tag !== 0x30) return undefined;
  if (list.end !== tbs.end) {
    const extensions = span(der, list.end, tbs.end);
    if (!extensions || extensions.tag !== 0xa2 || extensions.end !== tbs.end) return undefined;
  }
  const single = span(der, list.start, list.end);
  if (!single || single.tag !== 0x30 || single.end !== list.end) return undefined;
  const certId = span(der, single.start, single.end);
  if (!certId || certId.tag !== 0x30) return undefined;
  if (certId.end !== single.end) {
    const extensions = span(der, certId.end, single.end);
    if (!extensions || extensions.tag !== 0xa0 || extensions.end !== single.end) return undefined;
  }
  return der.subarray(certId.offset, certId.end);
}

interface Span {
  tag: number;
  offset: number;
  start: number;
  end: number;
}

/** One TLV inside [offset, limit): definite lengths of up to 3 bytes, bounds checked. */
function span(der: Buffer, offset: number, limit: number): Span | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 3 || start + count > limit) return undefined;
    length = 0;
    for (let i = 0; i < count; i += 1) length = length * 256 + der[start + i]!;
    start += count;
  }
  const end = start + length;
  return end <= limit ? { tag, offset, start, end } : undefined;
}
