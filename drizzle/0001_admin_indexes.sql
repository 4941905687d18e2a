CREATE INDEX "issues_created_idx" ON "issues" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "issues_repository_created_idx" ON "issues" USING btree ("repository_id","created_at","id");--> statement-breakpoint
CREATE INDEX "issues_repository_status_created_idx" ON "issues" USING btree ("repository_id","status","created_at","id");--> statement-breakpoint
CREATE INDEX "issues_status_created_idx" ON "issues" USING btree ("status","created_at","id");--> statement-breakpoint
CREATE INDEX "issues_owner_created_idx" ON "issues" USING btree ("owner_id","created_at","id");--> statement-breakpoint
CREATE INDEX "tasks_created_idx" ON "tasks" USING btree ("created_at");