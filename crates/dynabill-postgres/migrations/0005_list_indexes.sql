-- Lists page through live records in ID order and count them: an index that
-- serves both (a count reads only the index; a page is an ordered range scan).
CREATE INDEX accounts_live ON accounts (tenant_id, deleted_at, id);
CREATE INDEX plans_live ON plans (tenant_id, deleted_at, id);
CREATE INDEX recurring_items_live ON recurring_items (tenant_id, deleted_at, id);
CREATE INDEX invoices_tenant ON invoices (tenant_id, id);
