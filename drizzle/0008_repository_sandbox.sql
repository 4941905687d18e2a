-- Hand-added repositories (no .github/gaffer.yml is read for them) say here whether their tasks need a sandboxed node.
ALTER TABLE "repositories" ADD COLUMN "sandbox" text DEFAULT 'required' NOT NULL;--> statement-breakpoint
ALTER TABLE "repositories" ADD CONSTRAINT "repositories_sandbox_check" CHECK ("repositories"."sandbox" in ('required', 'optional'));