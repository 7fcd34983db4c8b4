CREATE SCHEMA "qo";
--> statement-breakpoint
CREATE TABLE "qo"."audit_entries" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "qo"."audit_entries_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"cluster" text NOT NULL,
	"user_name" text NOT NULL,
	"session" text NOT NULL,
	"transaction" text,
	"kind" text NOT NULL,
	"sql" text NOT NULL,
	"params" jsonb,
	"outcome" text NOT NULL,
	"error" text,
	"duration_ms" double precision NOT NULL,
	"row_count" bigint,
	"command_tag" text,
	"rollback" jsonb,
	"reversibility" text NOT NULL,
	"reason" text,
	"rollback_of" bigint,
	"rolled_back_by" bigint,
	"after_image" jsonb
);
--> statement-breakpoint
CREATE TABLE "qo"."backends" (
	"cluster" text NOT NULL,
	"name" text NOT NULL,
	"host" text NOT NULL,
	"port" integer NOT NULL,
	"database" text NOT NULL,
	"user_name" text NOT NULL,
	"schema" text,
	CONSTRAINT "backends_cluster_name_pk" PRIMARY KEY("cluster","name")
);
--> statement-breakpoint
CREATE TABLE "qo"."clusters" (
	"name" text PRIMARY KEY NOT NULL,
	"scanned_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "qo"."columns" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "qo"."columns_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"cluster" text NOT NULL,
	"schema" text NOT NULL,
	"table" text NOT NULL,
	"position" integer NOT NULL,
	"name" text NOT NULL,
	"type" text NOT NULL,
	"type_oid" bigint NOT NULL,
	"not_null" boolean NOT NULL,
	"default" text,
	"identity" text DEFAULT '' NOT NULL,
	"generated" boolean NOT NULL,
	CONSTRAINT "columns_cluster_table_position_key" UNIQUE("cluster","schema","table","position")
);
--> statement-breakpoint
CREATE TABLE "qo"."commit_decisions" (
	"gid" text PRIMARY KEY NOT NULL,
	"cluster" text NOT NULL,
	"decided_at" timestamp with time zone DEFAULT now() NOT NULL,
	"state" text DEFAULT 'commit' NOT NULL
);
--> statement-breakpoint
CREATE TABLE "qo"."constraints" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "qo"."constraints_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"cluster" text NOT NULL,
	"name" text NOT NULL,
	"schema" text NOT NULL,
	"table" text NOT NULL,
	"columns" text[] NOT NULL,
	"referenced_schema" text NOT NULL,
	"referenced_table" text NOT NULL,
	"referenced_columns" text[] NOT NULL,
	"on_delete" text NOT NULL,
	"on_update" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "qo"."schemas" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "qo"."schemas_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"cluster" text NOT NULL,
	"name" text NOT NULL,
	CONSTRAINT "schemas_cluster_name_key" UNIQUE("cluster","name")
);
--> statement-breakpoint
CREATE TABLE "qo"."tables" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "qo"."tables_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"cluster" text NOT NULL,
	"schema" text NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"primary_key" text[] NOT NULL,
	"serial_key" boolean NOT NULL,
	"unique_keys" jsonb NOT NULL,
	"triggers" text[] NOT NULL,
	"has_rules" boolean NOT NULL,
	CONSTRAINT "tables_cluster_schema_name_key" UNIQUE("cluster","schema","name")
);
--> statement-breakpoint
CREATE TABLE "qo"."tokens" (
	"jti" text PRIMARY KEY NOT NULL,
	"subject" text NOT NULL,
	"claims" jsonb NOT NULL,
	"issued_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "qo"."backends" ADD CONSTRAINT "backends_cluster_clusters_name_fk" FOREIGN KEY ("cluster") REFERENCES "qo"."clusters"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_entries_cluster_id_idx" ON "qo"."audit_entries" USING btree ("cluster","id");--> statement-breakpoint
CREATE INDEX "audit_entries_transaction_idx" ON "qo"."audit_entries" USING btree ("transaction");--> statement-breakpoint
CREATE INDEX "constraints_cluster_table_idx" ON "qo"."constraints" USING btree ("cluster","schema","table");--> statement-breakpoint
CREATE INDEX "constraints_cluster_referenced_idx" ON "qo"."constraints" USING btree ("cluster","referenced_schema","referenced_table");