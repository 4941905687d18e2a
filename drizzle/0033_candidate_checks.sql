CREATE TABLE "candidate_checks" (
	"task_id" uuid PRIMARY KEY NOT NULL,
	"run_id" uuid NOT NULL,
	"branch" text NOT NULL,
	"sha" text,
	"status" text DEFAULT 'pending' NOT NULL,
	"deadline" timestamp with time zone NOT NULL,
	"suites" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "candidate_checks_status_check" CHECK ("candidate_checks"."status" in ('pending', 'passed', 'failed', 'timed_out'))
);
--> statement-breakpoint
ALTER TABLE "candidate_runs" ADD COLUMN "checks_timeout_minutes" integer DEFAULT 30 NOT NULL;--> statement-breakpoint
ALTER TABLE "candidate_checks" ADD CONSTRAINT "candidate_checks_run_id_candidate_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."candidate_runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "candidate_checks_run_idx" ON "candidate_checks" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "candidate_checks_pending_idx" ON "candidate_checks" USING btree ("deadline") WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX "candidate_checks_sha_idx" ON "candidate_checks" USING btree ("sha") WHERE status = 'pending';