// The app's tables, as Drizzle sees them. No policy here: `drizzle-kit
// generate` writes the CREATE TABLE, and tenancy protects the table when the
// migration creates it (auto-protect: a tenant_id uuid NOT NULL column).
import { sql } from 'drizzle-orm';
import { bigint, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';

export const orders = pgTable('orders', {
  id: bigint('id', { mode: 'number' }).generatedAlwaysAsIdentity(),
  // The database fills it (protect() sets this default too); WITH CHECK
  // refuses any other tenant's id.
  tenantId: uuid('tenant_id').notNull().default(sql`tenancy.current_tenant()`),
  item: text('item').notNull(),
}, (t) => [primaryKey({ name: 'orders_pkey', columns: [t.tenantId, t.id] })]);
