CREATE TABLE "candidate_runs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"issue_id" uuid NOT NULL,
	"n" integer NOT NULL,
	"auto" boolean DEFAULT false NOT NULL,
	"max" integer NOT NULL,
	"agents" text[],
	"strategy" text NOT NULL,
	"select" text NOT NULL,
	"tests_ok" boolean DEFAULT false NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"winner_task_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone,
	CONSTRAINT "candidate_runs_status_check" CHECK ("candidate_runs"."status" in ('running', 'chosen', 'no_winner', 'cancelled')),
	CONSTRAINT "candidate_runs_n_check" CHECK ("candidate_runs"."n" >= 1 and "candidate_runs"."n" <= "candidate_runs"."max")
);
--> statement-breakpoint
ALTER TABLE "tasks" DROP CONSTRAINT "tasks_kind_check";--> statement-breakpoint
DROP INDEX "tasks_one_active_per_issue_uq";--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "run_id" uuid;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "candidate" integer;--> statement-breakpoint
ALTER TABLE "candidate_runs" ADD CONSTRAINT "candidate_runs_issue_id_issues_id_fk" FOREIGN KEY ("issue_id") REFERENCES "public"."issues"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "candidate_runs_issue_idx" ON "candidate_runs" USING btree ("issue_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "tasks_one_active_per_candidate_uq" ON "tasks" USING btree ("run_id","candidate") WHERE status in ('pending', 'running');--> statement-breakpoint
CREATE INDEX "tasks_run_idx" ON "tasks" USING btree ("run_id") WHERE run_id is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "tasks_one_active_per_issue_uq" ON "tasks" USING btree ("issue_id") WHERE status in ('pending', 'running') and kind <> 'candidate';--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_candidate_check" CHECK (("tasks"."kind" = 'candidate') = ("tasks"."run_id" is not null and "tasks"."candidate" is not null));--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_kind_check" CHECK ("tasks"."kind" in ('issue', 'follow_up', 'candidate'));