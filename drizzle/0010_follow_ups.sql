CREATE TABLE "pull_request_ci" (
	"issue_id" uuid PRIMARY KEY NOT NULL,
	"pr_number" integer NOT NULL,
	"rerun_sha" text,
	"fix_sha" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"stopped_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "kind" text DEFAULT 'issue' NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "agent" text;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "model" text;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "base_branch" text;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "head_branch" text;--> statement-breakpoint
ALTER TABLE "pull_request_ci" ADD CONSTRAINT "pull_request_ci_issue_id_issues_id_fk" FOREIGN KEY ("issue_id") REFERENCES "public"."issues"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_kind_check" CHECK ("tasks"."kind" in ('issue', 'follow_up'));