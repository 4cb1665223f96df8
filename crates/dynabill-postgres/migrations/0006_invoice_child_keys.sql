-- Lines, ledger entries and invoiced one-time items reference their invoice by its
-- primary key alone. With the composite (tenant_id, id) reference, PostgreSQL's
-- cached foreign-key check ("SELECT 1 FROM invoices WHERE tenant_id = $1 AND id =
-- $2") was planned while the table was small, could pick any index leading with
-- tenant_id, and then scanned the tenant's invoices once per inserted line: a bill
-- run slowed down as it went (until statistics were refreshed). `id` alone matches
-- only the primary key. The tenant of a child still equals its invoice's tenant:
-- the store writes both from the same tenant, in one transaction.
--
-- The references are checked at commit, so that a bill run can write an invoice
-- after its lines: it writes invoices last, with their numbers, and so holds the
-- tenant's number sequence only for the end of its transaction.
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_invoice_fk,
    ADD CONSTRAINT invoice_lines_invoice_fk FOREIGN KEY (invoice_id) REFERENCES invoices (id)
        DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE billing_ledger DROP CONSTRAINT billing_ledger_invoice_fk,
    ADD CONSTRAINT billing_ledger_invoice_fk FOREIGN KEY (invoice_id) REFERENCES invoices (id)
        DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE one_time_items DROP CONSTRAINT one_time_items_invoice_fk,
    ADD CONSTRAINT one_time_items_invoice_fk FOREIGN KEY (invoice_id) REFERENCES invoices (id)
        DEFERRABLE INITIALLY DEFERRED;

-- A line's and a ledger entry's tenant is already held to an existing tenant by
-- their item's reference ((tenant_id, item_id) → the item of that tenant, whose
-- tenant exists; every line comes from a recurring or a one-time item): the direct
-- reference to tenants was a second check of the same thing per row written.
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_tenant_id_fkey;
ALTER TABLE billing_ledger DROP CONSTRAINT billing_ledger_tenant_id_fkey;
