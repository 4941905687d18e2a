ALTER TABLE "tasks" ADD COLUMN "phase" jsonb;--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_phase_check" CHECK ("tasks"."phase" is null or "tasks"."status" = 'running');