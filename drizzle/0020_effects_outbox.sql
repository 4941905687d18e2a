CREATE TABLE "effects" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"installation_id" bigint NOT NULL,
	"task_id" uuid,
	"issue_id" uuid,
	"idempotency_key" text NOT NULL,
	"coalesce_key" text,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"priority" integer NOT NULL,
	"state" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"run_after" timestamp with time zone DEFAULT now() NOT NULL,
	"lease_until" timestamp with time zone,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"done_at" timestamp with time zone,
	CONSTRAINT "effects_state_check" CHECK ("effects"."state" in ('pending', 'running', 'done', 'dead'))
);
--> statement-breakpoint
ALTER TABLE "effects" ADD CONSTRAINT "effects_task_id_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."tasks"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "effects" ADD CONSTRAINT "effects_issue_id_issues_id_fk" FOREIGN KEY ("issue_id") REFERENCES "public"."issues"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "effects_idempotency_uq" ON "effects" USING btree ("idempotency_key");--> statement-breakpoint
CREATE UNIQUE INDEX "effects_coalesce_pending_uq" ON "effects" USING btree ("coalesce_key") WHERE state = 'pending' and coalesce_key is not null;--> statement-breakpoint
CREATE INDEX "effects_due_idx" ON "effects" USING btree ("installation_id","priority","run_after","id") WHERE state = 'pending';--> statement-breakpoint
CREATE INDEX "effects_running_idx" ON "effects" USING btree ("lease_until") WHERE state = 'running';--> statement-breakpoint
CREATE INDEX "effects_task_idx" ON "effects" USING btree ("task_id");