//! dynabill-store-contract: the behaviour every storage backend owes the application,
//! written once as async test functions and run by each backend against itself.
//!
//! A backend's `tests/contract.rs` names a function that gives a migrated store and
//! invokes [`contract_tests!`], which expands to one `#[tokio::test]` per contract
//! function. Every contract function takes `Arc<dyn Store>`, writes what it needs
//! from scratch (its store is empty), and panics on a broken promise.
//!
//! A new contract function must also be listed in [`contract_tests!`]; the unit
//! test at the bottom of this file fails when one is missing.

mod accounts;
mod bill_runs;
mod billing;
mod cascade;
mod concurrency;
mod consistency;
mod databases;
mod fixtures;
mod idempotency;
mod invoices;
mod isolation;
mod items;
mod lifecycle;
mod lists;
mod one_time;
mod plans;
mod taxes;
mod tenants;

pub use accounts::*;
pub use bill_runs::*;
pub use billing::*;
pub use cascade::*;
pub use concurrency::*;
pub use consistency::*;
pub use databases::{
    POSTGRES_URL_VAR, PostgresSchema, REQUIRE_POSTGRES_VAR, TestStore, fresh_postgres_schema,
    fresh_postgres_url, fresh_sqlite_url,
};
pub use idempotency::*;
pub use invoices::*;
pub use isolation::*;
pub use items::*;
pub use lifecycle::*;
pub use lists::*;
pub use one_time::*;
pub use plans::*;
pub use taxes::*;
pub use tenants::*;

/// Expands to one `#[tokio::test]` per contract function. `$make` names an async
/// function returning `Option<TestStore>` (a migrated, empty store); `None` skips
/// the test, for a backend whose database is not configured.
///
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) among its
/// dev-dependencies.
#[macro_export]
macro_rules! contract_tests {
    ($make:path) => {
        $crate::contract_tests!(@each $make;
            // BEGIN CONTRACT LIST
            a_new_tenant_is_found_by_its_app_key_together_with_its_first_user,
            an_app_key_belongs_to_one_tenant_and_a_refused_tenant_leaves_nothing_behind,
            a_user_name_is_unique_within_its_tenant_only,
            a_credential_needs_the_right_app_key_and_a_user_of_that_tenant,
            an_account_keeps_every_field_exactly_and_is_found_by_id_and_by_ext_id,
            an_ext_id_stays_taken_even_after_its_account_is_deleted,
            an_account_update_applies_only_at_the_version_it_was_read,
            listing_accounts_filters_by_id_ext_ids_status_update_time_and_deletion,
            account_pages_follow_id_order_with_the_full_total_and_a_resume_key,
            deleting_an_account_cancels_its_open_plans_in_the_same_step,
            deleting_an_account_at_a_stale_version_changes_nothing,
            a_plan_keeps_every_field_exactly_and_names_its_accounts_current_ext_id,
            a_plan_ext_id_is_unique_across_the_tenants_accounts_even_once_deleted,
            a_plan_update_applies_only_at_the_version_it_was_read,
            a_plan_cannot_be_added_to_a_deleted_or_unknown_account,
            listing_plans_filters_by_id_ext_id_account_and_deletion,
            the_plan_status_filter_is_derived_from_the_given_today,
            plan_pages_follow_id_order_with_the_full_total_and_a_resume_key,
            cancelling_a_plan_records_its_date_at_the_version_it_was_read,
            deleting_a_plan_hides_it_and_cancels_it_unless_already_cancelled,
            a_tenant_never_sees_or_changes_another_tenants_accounts,
            a_tenant_never_sees_or_changes_another_tenants_plans,
            a_tenant_never_sees_or_settles_another_tenants_idempotency_keys,
            a_claimed_key_is_in_flight_until_completed_and_then_replays_its_response,
            a_key_reused_for_a_different_request_is_a_mismatch,
            a_released_key_can_be_claimed_again_but_a_completed_key_stays,
            an_expired_key_counts_as_absent_and_a_new_claim_replaces_it,
            an_abandoned_claim_is_taken_over_by_the_same_request_once_its_lease_runs_out,
            purging_removes_only_keys_created_before_the_cutoff,
            concurrent_inserts_of_one_ext_id_create_exactly_one_account,
            concurrent_inserts_of_many_accounts_each_come_back_as_written,
            concurrent_updates_at_one_version_succeed_exactly_once,
            concurrent_claims_of_one_idempotency_key_claim_it_exactly_once,
            concurrent_claims_of_an_expired_idempotency_key_replace_it_exactly_once,
            a_plan_added_while_its_account_is_deleted_ends_up_cancelled_or_refused,
            migrating_again_keeps_the_data_and_the_store_answers_pings,
            a_recurring_item_keeps_every_field_exactly_with_its_first_history_entry,
            a_recurring_item_ext_id_stays_taken_even_after_the_item_is_deleted,
            a_recurring_item_needs_a_live_plan_of_its_tenant,
            recurring_item_writes_apply_only_at_their_versions_and_all_or_nothing,
            an_items_history_grows_in_the_order_of_its_writes,
            a_deleted_recurring_item_is_listed_only_on_request_but_found_by_key,
            listing_recurring_items_filters_by_id_ext_id_plan_and_deletion,
            recurring_item_pages_follow_id_order_with_the_full_total_and_a_resume_key,
            a_one_time_item_keeps_every_field_exactly_and_is_found_by_id_and_by_ext_id,
            a_one_time_item_ext_id_stays_taken_even_after_the_item_is_deleted,
            a_one_time_item_needs_a_live_plan_of_its_tenant,
            a_one_time_item_update_applies_only_at_its_version_and_may_cancel_or_delete_it,
            listing_one_time_items_filters_by_id_ext_id_plan_and_deletion,
            one_time_item_pages_follow_id_order_with_the_full_total_and_a_resume_key,
            cancelling_a_plan_cancels_its_running_items_from_the_later_of_their_start_and_the_date,
            deleting_a_plan_cancels_its_items_as_cancelling_does,
            deleting_an_account_cancels_the_items_of_all_its_plans,
            a_tenant_never_sees_or_changes_another_tenants_items,
            concurrent_inserts_of_one_ext_id_create_exactly_one_recurring_item,
            concurrent_inserts_of_one_ext_id_create_exactly_one_one_time_item,
            concurrent_item_batches_at_one_version_succeed_exactly_once,
            an_item_added_while_its_plan_is_deleted_ends_up_cancelled_or_refused,
            a_new_tenant_has_the_default_settings_and_keeps_the_ones_written,
            a_tenants_test_clock_date_is_set_and_cleared,
            a_scheduled_run_is_claimed_once_per_date_and_tenant,
            tenants_are_listed_oldest_first_with_their_settings,
            concurrent_claims_of_a_scheduled_run_claim_it_exactly_once,
            billable_accounts_are_active_or_with_billing_issues_not_deleted_in_id_order,
            bill_run_participants_claim_consecutive_batches_and_the_run_ends_when_all_are_done,
            a_batch_whose_lease_expired_is_taken_over_once_and_a_renewed_one_is_not,
            a_run_nobody_renewed_is_abandoned_and_a_new_one_started,
            a_billing_snapshot_holds_plans_items_unreleased_ledger_and_pending_charges,
            a_committed_bill_keeps_its_invoices_and_lines_exactly,
            posted_invoices_are_numbered_without_gaps_and_drafts_are_not,
            a_bill_with_a_piece_billed_already_is_refused_and_writes_nothing,
            a_bill_moves_the_credit_balance_only_from_the_balance_it_was_computed_from,
            a_one_time_item_is_invoiced_once_and_only_while_pending,
            bills_of_several_accounts_commit_together_or_not_at_all,
            concurrent_commits_of_one_bill_succeed_exactly_once,
            concurrent_bills_of_many_accounts_take_invoice_numbers_without_gaps,
            listing_invoices_filters_by_id_account_plan_status_and_date,
            invoice_pages_follow_id_order_with_the_full_total_and_a_resume_key,
            an_invoice_update_applies_only_at_its_version_and_posting_numbers_it,
            cancelling_an_invoice_gives_back_its_credit_and_with_rebill_what_it_billed,
            an_account_has_invoices_unless_all_are_cancelled_and_unpaid_ones_while_posted,
            a_tenant_never_sees_or_changes_another_tenants_invoices,
            a_tenants_tax_mode_and_avatax_settings_are_kept_with_the_license_key,
            tax_rates_are_listed_oldest_first_with_their_exact_rates_and_removed_once,
            a_tenant_never_sees_or_removes_another_tenants_tax_rates,
            line_taxes_are_kept_exactly_through_a_committed_bill,
            posting_a_draft_numbers_it_writes_its_taxes_and_totals_and_moves_its_credit,
            posting_a_draft_to_pending_tax_takes_no_number,
            a_tax_error_is_recorded_only_while_pending_tax_and_cleared_by_posting,
            concurrent_postings_use_an_accounts_credit_once_and_take_one_number,
            an_account_page_counts_what_it_lists_while_accounts_are_added,
            a_plan_page_counts_what_it_lists_while_plans_are_added,
            item_pages_count_what_they_list_while_items_are_added,
            every_unique_constraint_is_reported_as_its_own_error,
            a_read_dropped_midway_leaves_no_transaction_behind,
            list_totals_stay_exact_through_creates_status_changes_and_deletions,
            a_later_page_reports_the_total_its_request_names,
            // END CONTRACT LIST
        );
    };
    (@each $make:path; $($name:ident),+ $(,)?) => {
        $(
            // Several worker threads, so that the concurrency contracts really race.
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(test_store) = $make().await else {
                    return;
                };
                $crate::$name(test_store.store()).await;
                test_store.finish().await;
            }
        )+
    };
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every `pub async fn name(store: Arc<dyn Store>)` in the contract modules.
    fn defined() -> BTreeSet<String> {
        let sources = [
            include_str!("accounts.rs"),
            include_str!("billing.rs"),
            include_str!("bill_runs.rs"),
            include_str!("cascade.rs"),
            include_str!("concurrency.rs"),
            include_str!("consistency.rs"),
            include_str!("idempotency.rs"),
            include_str!("invoices.rs"),
            include_str!("isolation.rs"),
            include_str!("items.rs"),
            include_str!("lifecycle.rs"),
            include_str!("lists.rs"),
            include_str!("one_time.rs"),
            include_str!("plans.rs"),
            include_str!("taxes.rs"),
            include_str!("tenants.rs"),
        ];
        let mut names = BTreeSet::new();
        for source in sources {
            for chunk in source.split("pub async fn ").skip(1) {
                let (name, rest) = chunk.split_once('(').expect("a function signature");
                if rest.trim_start().starts_with("store: Arc<dyn Store>") {
                    names.insert(name.trim().to_owned());
                }
            }
        }
        names
    }

    /// The names between the markers in `contract_tests!`.
    fn listed() -> BTreeSet<String> {
        let source = include_str!("lib.rs");
        let start = source.find("// BEGIN CONTRACT LIST").expect("start marker");
        let end = source.find("// END CONTRACT LIST").expect("end marker");
        source[start..end]
            .lines()
            .skip(1)
            .map(|line| line.trim().trim_end_matches(',').to_owned())
            .filter(|name| !name.is_empty())
            .collect()
    }

    #[test]
    fn every_contract_function_is_run_by_the_macro() {
        let defined = defined();
        assert!(defined.len() >= 30, "found only {defined:?}");
        assert_eq!(listed(), defined);
    }
}
