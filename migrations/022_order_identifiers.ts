import type { Knex } from 'knex';

/**
 * ACME orders keep their identifier as ordered (draft-ietf-acme-device-attest-09:
 * a permanent-identifier with an assigner, or a hardware-module), so the
 * certificate's SAN carries it octet for octet. Null in orders made before:
 * a permanent-identifier of device_serial.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table acme_orders add column identifier_type text, add column identifier_value text');
  await knex.raw(`alter table acme_orders add constraint acme_orders_identifier check (
    (identifier_type is null and identifier_value is null)
    or (identifier_type in ('permanent-identifier', 'hardware-module') and identifier_value is not null and length(identifier_value) <= 1024))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table acme_orders drop constraint acme_orders_identifier');
  await knex.raw('alter table acme_orders drop column identifier_value, drop column identifier_type');
}
