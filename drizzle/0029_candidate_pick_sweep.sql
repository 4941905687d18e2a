ALTER TABLE "candidate_runs" ADD COLUMN "picked_task_id" uuid;--> statement-breakpoint
ALTER TABLE "candidate_runs" ADD COLUMN "winner_sha" text;--> statement-breakpoint
ALTER TABLE "candidate_runs" ADD COLUMN "keep_candidates_days" integer DEFAULT 7 NOT NULL;--> statement-breakpoint
ALTER TABLE "candidate_runs" ADD COLUMN "branches_swept_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "candidate_runs_sweep_idx" ON "candidate_runs" USING btree ("completed_at") WHERE branches_swept_at is null and completed_at is not null;