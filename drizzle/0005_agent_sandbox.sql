-- Existing queued tasks become sandbox_required (the default): they wait for a sandboxed node rather than
-- run unsandboxed; existing nodes are `off` until their agent reports its sandbox.
CREATE TABLE "task_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"task_id" uuid,
	"ciphertext" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"revoke_due" boolean DEFAULT false NOT NULL,
	"revoke_attempts" integer DEFAULT 0 NOT NULL,
	"next_revoke_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "sandbox" text DEFAULT 'off' NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "setup" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "network" jsonb DEFAULT '{"mode":"full"}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "sandbox_required" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "task_tokens" ADD CONSTRAINT "task_tokens_task_id_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."tasks"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "task_tokens_task_idx" ON "task_tokens" USING btree ("task_id");--> statement-breakpoint
CREATE INDEX "task_tokens_expires_idx" ON "task_tokens" USING btree ("expires_at");--> statement-breakpoint
ALTER TABLE "nodes" ADD CONSTRAINT "nodes_sandbox_check" CHECK ("nodes"."sandbox" in ('bwrap', 'off'));