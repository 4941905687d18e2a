CREATE TABLE "manifest_states" (
	"state_hash" text PRIMARY KEY NOT NULL,
	"session_token_hash" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "server_settings" (
	"key" text PRIMARY KEY NOT NULL,
	"value" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "server_settings_key_check" CHECK ("server_settings"."key" in ('bootstrap_token_retired'))
);
--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "admin_env_password_hash" text;--> statement-breakpoint
ALTER TABLE "manifest_states" ADD CONSTRAINT "manifest_states_session_token_hash_sessions_token_hash_fk" FOREIGN KEY ("session_token_hash") REFERENCES "public"."sessions"("token_hash") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "manifest_states_expires_idx" ON "manifest_states" USING btree ("expires_at");