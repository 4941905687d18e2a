CREATE TABLE "registration_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"token_hash" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"max_uses" integer NOT NULL,
	"uses" integer DEFAULT 0 NOT NULL,
	"allowed_labels" text[] DEFAULT '{}'::text[] NOT NULL,
	"max_capacity" integer NOT NULL,
	"allow_replace" boolean DEFAULT false NOT NULL,
	"created_by" uuid,
	"revoked_at" timestamp with time zone,
	"last_used_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "registration_tokens_token_hash_unique" UNIQUE("token_hash"),
	CONSTRAINT "registration_tokens_max_uses_check" CHECK ("registration_tokens"."max_uses" >= 1),
	CONSTRAINT "registration_tokens_uses_check" CHECK ("registration_tokens"."uses" >= 0),
	CONSTRAINT "registration_tokens_max_capacity_check" CHECK ("registration_tokens"."max_capacity" >= 0)
);
--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "mode" text DEFAULT 'push' NOT NULL;--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "allowed_labels" text[];--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "max_capacity" integer;--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "registration_token_id" uuid;--> statement-breakpoint
ALTER TABLE "registration_tokens" ADD CONSTRAINT "registration_tokens_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "nodes" ADD CONSTRAINT "nodes_registration_token_id_registration_tokens_id_fk" FOREIGN KEY ("registration_token_id") REFERENCES "public"."registration_tokens"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "nodes" ADD CONSTRAINT "nodes_mode_check" CHECK ("nodes"."mode" in ('push', 'pull'));