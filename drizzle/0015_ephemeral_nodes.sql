ALTER TABLE "nodes" ADD COLUMN "ephemeral" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "registration_tokens" ADD COLUMN "ephemeral" boolean DEFAULT false NOT NULL;