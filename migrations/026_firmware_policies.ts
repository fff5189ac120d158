import type { Knex } from 'knex';

/**
 * Firmware policies (docs/operators/firmware.md): what a device class does
 * with a device that attests on a withdrawn release (refuse, the default, or
 * suspend).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw("alter table device_classes add column on_withdrawn_firmware text not null default 'refuse'");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table device_classes drop column on_withdrawn_firmware');
}
