-- PostgreSQL's 0006 makes revocations notify other replicas. SQLite has one process, whose own
-- units of work wake its feed: nothing to change (the migration keeps both sets numbered alike).
SELECT 1;
