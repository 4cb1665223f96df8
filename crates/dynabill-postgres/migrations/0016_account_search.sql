-- The console's account search (`account_search`): a name prefix (a range in
-- byte order, whatever the database's collation) and an exact e-mail, ignoring
-- case, each read in name order from its own index and cut at the page's size
-- (the ExtID by the accounts_ext_id constraint's index).
CREATE INDEX accounts_name_search ON accounts (tenant_id, (lower(name) COLLATE "C"), id);
CREATE INDEX accounts_email_search ON accounts (tenant_id, lower(email), (lower(name) COLLATE "C"), id);
