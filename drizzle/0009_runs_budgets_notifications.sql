CREATE TABLE "notification_deliveries" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"target_id" uuid NOT NULL,
	"event" text NOT NULL,
	"task_id" uuid,
	"payload" jsonb NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_status_code" integer,
	"last_error" text,
	"delivered_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "notification_deliveries_status_check" CHECK ("notification_deliveries"."status" in ('pending', 'delivered', 'failed'))
);
--> statement-breakpoint
CREATE TABLE "notification_targets" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"kind" text NOT NULL,
	"address" text NOT NULL,
	"secret_ciphertext" text,
	"repository_id" uuid,
	"user_id" uuid,
	"events" text[] DEFAULT '{}'::text[] NOT NULL,
	"active" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "notification_targets_kind_check" CHECK ("notification_targets"."kind" in ('webhook', 'email'))
);
--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "outcome" text;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "usage" jsonb;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "first_log_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "repo_max_per_day" integer;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "repo_max_concurrent" integer;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "check_run_id" bigint;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "check_run_sha" text;--> statement-breakpoint
ALTER TABLE "notification_deliveries" ADD CONSTRAINT "notification_deliveries_target_id_notification_targets_id_fk" FOREIGN KEY ("target_id") REFERENCES "public"."notification_targets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notification_deliveries" ADD CONSTRAINT "notification_deliveries_task_id_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."tasks"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notification_targets" ADD CONSTRAINT "notification_targets_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notification_targets" ADD CONSTRAINT "notification_targets_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "notification_deliveries_once_uq" ON "notification_deliveries" USING btree ("target_id","event","task_id");--> statement-breakpoint
CREATE INDEX "notification_deliveries_due_idx" ON "notification_deliveries" USING btree ("next_attempt_at") WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX "notification_deliveries_created_idx" ON "notification_deliveries" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "notification_targets_repository_idx" ON "notification_targets" USING btree ("repository_id");--> statement-breakpoint
CREATE INDEX "notification_targets_user_idx" ON "notification_targets" USING btree ("user_id");--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_outcome_check" CHECK ("tasks"."outcome" is null or "tasks"."outcome" in ('success', 'no_changes', 'agent_error', 'infra_error', 'timeout', 'hung', 'budget_exceeded', 'cancelled'));--> statement-breakpoint
-- Tasks that ended before outcomes existed get the one their status and failure kind imply.
UPDATE "tasks" SET "outcome" = CASE
	WHEN "status" = 'success' THEN 'success'
	WHEN "failure_kind" = 'cancelled' THEN 'cancelled'
	WHEN "failure_kind" = 'timeout' THEN 'timeout'
	WHEN "failure_kind" = 'agent_failed' AND "error_message" = 'no changes' THEN 'no_changes'
	WHEN "failure_kind" = 'agent_failed' THEN 'agent_error'
	ELSE 'infra_error'
END WHERE "status" IN ('success', 'failed');