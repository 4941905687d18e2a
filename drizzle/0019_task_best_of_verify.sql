ALTER TABLE "tasks" ADD COLUMN "verify" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "best_of" jsonb;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "change" jsonb;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "verify_results" jsonb;