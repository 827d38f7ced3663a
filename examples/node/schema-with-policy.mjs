// schema.mjs with the isolation policy declared as tenancy generates it
// (what `\d orders` shows): `drizzle-kit push` then finds nothing to change.
import { sql } from 'drizzle-orm';
import { bigint, pgPolicy, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';

export const orders = pgTable('orders', {
  id: bigint('id', { mode: 'number' }).generatedAlwaysAsIdentity(),
  tenantId: uuid('tenant_id').notNull().default(sql`tenancy.current_tenant()`),
  item: text('item').notNull(),
}, (t) => [
  primaryKey({ name: 'orders_pkey', columns: [t.tenantId, t.id] }),
  pgPolicy('tenancy_isolation', {
    as: 'permissive',
    for: 'all',
    to: 'public',
    using: sql`(tenant_id = tenancy.current_tenant())`,
    withCheck: sql`(tenant_id = tenancy.current_tenant())`,
  }),
]);
