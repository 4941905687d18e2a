-- New issues (from GitHub, a backfill or the API) and a change of owner are announced too, so an
-- open issue list shows a new issue without a reload, and each page hears of the issues it may see.
DROP TRIGGER IF EXISTS issues_notify_status ON issues;
--> statement-breakpoint
CREATE TRIGGER issues_notify_status AFTER UPDATE OF status, owner_id ON issues
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.owner_id IS DISTINCT FROM NEW.owner_id)
  EXECUTE FUNCTION gaffer_notify_issue();
--> statement-breakpoint
CREATE TRIGGER issues_notify_insert AFTER INSERT ON issues
  FOR EACH ROW EXECUTE FUNCTION gaffer_notify_issue();
