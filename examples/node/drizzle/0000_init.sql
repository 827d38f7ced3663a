CREATE TABLE "orders" (
	"id" bigint GENERATED ALWAYS AS IDENTITY (sequence name "orders_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"tenant_id" uuid DEFAULT tenancy.current_tenant() NOT NULL,
	"item" text NOT NULL,
	CONSTRAINT "orders_pkey" PRIMARY KEY("tenant_id","id")
);
