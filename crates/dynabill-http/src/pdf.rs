//! Invoices as PDF: an A4 or Letter document drawn in process with
//! `pdf-writer` and the standard Helvetica faces (every PDF reader has them, so
//! nothing is embedded and a page weighs a few kilobytes). The same invoice
//! always gives the same bytes: no creation date, no random document ID.
//!
//! What the document says around the invoice (the seller's block, the labels,
//! a footer, the paper size, the accent colour) is an [`InvoiceTemplate`],
//! overridable by a TOML file (`serve --invoice-template FILE`). Text is
//! written in WinAnsi (Latin-1 and a few signs such as €); a character outside
//! it prints as `?` (docs/CONSOLE.md says so).
//!
//! Layout is computed in whole points (`i32`): the workspace keeps float
//! arithmetic out, and a point is finer than print needs.

use dynabill_app::model::{Account, Invoice, Tenant};
use dynabill_core::money::Currency;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::rest::shapes;

/// The words and looks of the invoice document.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InvoiceTemplate {
    /// `A4` or `Letter`.
    pub paper: Paper,
    /// The document's heading.
    pub title: String,
    /// The seller's block, line by line; empty: the tenant's name.
    pub seller: Vec<String>,
    /// The accent colour (headings, rules), as red, green, blue from 0 to 255.
    pub accent: [u8; 3],
    /// A closing text under the totals (payment terms, bank details).
    pub footer: Vec<String>,
    pub labels: Labels,
}

/// The paper the document is laid out on.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum Paper {
    A4,
    Letter,
}

impl Paper {
    /// Width and height in points.
    fn size(self) -> (i32, i32) {
        match self {
            Paper::A4 => (595, 842),
            Paper::Letter => (612, 792),
        }
    }
}

/// Every label the document prints, so that a template can translate it.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Labels {
    pub bill_to: String,
    pub number: String,
    pub invoice_date: String,
    pub due_date: String,
    pub status: String,
    pub po_number: String,
    pub description: String,
    pub period: String,
    pub quantity: String,
    pub unit_price: String,
    pub amount: String,
    pub subtotal: String,
    pub tax: String,
    pub total: String,
    pub credit_applied: String,
    pub amount_due: String,
    pub paid: String,
    pub cancelled: String,
    pub draft: String,
    pub page: String,
}

impl Default for Labels {
    fn default() -> Labels {
        Labels {
            bill_to: "Bill to".into(),
            number: "Invoice number".into(),
            invoice_date: "Invoice date".into(),
            due_date: "Due date".into(),
            status: "Status".into(),
            po_number: "PO number".into(),
            description: "Description".into(),
            period: "Service period".into(),
            quantity: "Qty".into(),
            unit_price: "Unit price".into(),
            amount: "Amount".into(),
            subtotal: "Subtotal".into(),
            tax: "Tax".into(),
            total: "Total".into(),
            credit_applied: "Credit applied".into(),
            amount_due: "Amount due".into(),
            paid: "PAID".into(),
            cancelled: "CANCELLED".into(),
            draft: "DRAFT".into(),
            page: "Page".into(),
        }
    }
}

impl Default for InvoiceTemplate {
    fn default() -> InvoiceTemplate {
        InvoiceTemplate {
            paper: Paper::A4,
            title: "Invoice".into(),
            seller: Vec::new(),
            accent: [31, 95, 191],
            footer: Vec::new(),
            labels: Labels::default(),
        }
    }
}

impl InvoiceTemplate {
    /// Reads a template file (TOML); what it leaves out keeps its default.
    pub fn from_toml(text: &str) -> Result<InvoiceTemplate, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

const MARGIN: i32 = 50;
const BODY: f32 = 9.5;
const SMALL: f32 = 8.0;
const LINE: i32 = 13;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// Helvetica's advance widths (thousandths of the font size) of the characters
/// amounts and dates are made of; other characters count as the widest digit
/// would (amounts are the only right-aligned text).
fn char_width(c: u8) -> i32 {
    match c {
        b'0'..=b'9' => 556,
        b',' | b'.' | b' ' => 278,
        b'-' => 333,
        b'%' => 889,
        _ => 611,
    }
}

/// The width, in thousandths of a point, of `text` at a size of `size_tenths` tenths of a point.
fn text_width_milli(text: &[u8], size_tenths: i32) -> i32 {
    text.iter().map(|&c| char_width(c)).sum::<i32>() * size_tenths / 10
}

/// Text in WinAnsi: Latin-1 as is, a few signs mapped, the rest `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '€' => 0x80,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            _ => b'?',
        })
        .collect()
}

/// An amount as the document prints it: rounded to the currency's minor unit,
/// digits grouped (the currency's code is in the column's heading).
fn amount(value: Decimal, currency: Currency) -> String {
    shapes::grouped_money(value, currency)
}

/// A colour component from 0..=255 to PDF's 0..=1.
#[expect(
    clippy::float_arithmetic,
    reason = "a colour, not an amount: PDF takes its components as fractions"
)]
fn colour(component: u8) -> f32 {
    f32::from(component) / 255.0
}

/// The PDF as a download.
pub fn response(
    template: &InvoiceTemplate,
    tenant: &Tenant,
    account: &Account,
    invoice: &Invoice,
) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let name: String = invoice
        .number
        .clone()
        .unwrap_or_else(|| format!("invoice-{}", invoice.id))
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.pdf\""),
            ),
        ],
        render(template, tenant, account, invoice),
    )
        .into_response()
}

/// Pages being drawn: each a content stream; a new one when the current is full.
struct Pages {
    done: Vec<Content>,
    current: Content,
    y: i32,
    width: i32,
    height: i32,
    accent: [u8; 3],
}

impl Pages {
    fn new(paper: Paper, accent: [u8; 3]) -> Pages {
        let (width, height) = paper.size();
        Pages {
            done: Vec::new(),
            current: Content::new(),
            y: height - MARGIN,
            width,
            height,
            accent,
        }
    }

    fn right(&self) -> i32 {
        self.width - MARGIN
    }

    /// Makes room for `lines` lines, starting a page when they do not fit.
    fn room(&mut self, lines: i32) -> bool {
        if self.y - lines * LINE < MARGIN + 2 * LINE {
            let full = std::mem::replace(&mut self.current, Content::new());
            self.done.push(full);
            self.y = self.height - MARGIN;
            return true;
        }
        false
    }

    fn text(&mut self, x: i32, font: Name<'static>, size: f32, text: &str) {
        let bytes = win_ansi(text);
        self.current
            .begin_text()
            .set_font(font, size)
            .next_line(x as f32, self.y as f32)
            .show(Str(&bytes))
            .end_text();
    }

    /// Text ending at `right` (amounts), at a size of `size_tenths` tenths of a point.
    fn text_right(&mut self, right: i32, font: Name<'static>, size_tenths: i32, text: &str) {
        let bytes = win_ansi(text);
        let width = text_width_milli(&bytes, size_tenths) / 1000;
        let size = if size_tenths == 80 { SMALL } else { BODY };
        self.current
            .begin_text()
            .set_font(font, size)
            .next_line((right - width) as f32, self.y as f32)
            .show(Str(&bytes))
            .end_text();
    }

    fn rule(&mut self) {
        let [r, g, b] = self.accent.map(colour);
        let (y, right) = (self.y + 4, self.right());
        self.current
            .save_state()
            .set_stroke_rgb(r, g, b)
            .set_line_width(0.8)
            .move_to(MARGIN as f32, y as f32)
            .line_to(right as f32, y as f32)
            .stroke()
            .restore_state();
    }

    fn down(&mut self, lines: i32) {
        self.y -= lines * LINE;
    }
}

/// The invoice as a PDF document.
pub fn render(
    template: &InvoiceTemplate,
    tenant: &Tenant,
    account: &Account,
    invoice: &Invoice,
) -> Vec<u8> {
    let labels = &template.labels;
    let currency = invoice.currency;
    let mut pages = Pages::new(template.paper, template.accent);
    let right = pages.right();
    // Columns: description, period, quantity (right), unit price (right), amount (right).
    let (period_x, quantity_r, price_r) = (right - 300, right - 140, right - 75);

    // Heading: the title and the seller on the left, the invoice's facts on the right.
    pages.text(MARGIN, BOLD, 20.0, &template.title);
    let stamp = match invoice.status {
        dynabill_core::domain::InvoiceStatus::Paid => Some(&labels.paid),
        dynabill_core::domain::InvoiceStatus::Cancelled => Some(&labels.cancelled),
        dynabill_core::domain::InvoiceStatus::Draft => Some(&labels.draft),
        _ => None,
    };
    if let Some(stamp) = stamp {
        pages.text(right - 120, BOLD, 14.0, stamp);
    }
    pages.down(2);
    let seller: Vec<String> = if template.seller.is_empty() {
        vec![tenant.name.clone()]
    } else {
        template.seller.clone()
    };
    let facts = [
        (
            &labels.number,
            invoice.number.clone().unwrap_or_else(|| "-".into()),
        ),
        (&labels.invoice_date, invoice.invoice_date.to_string()),
        (&labels.due_date, invoice.due_date.to_string()),
        (
            &labels.po_number,
            invoice.po_number.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    for row in 0..seller.len().max(facts.len()) {
        if let Some(line) = seller.get(row) {
            pages.text(MARGIN, if row == 0 { BOLD } else { REGULAR }, BODY, line);
        }
        if let Some((label, value)) = facts.get(row) {
            pages.text(right - 200, REGULAR, BODY, label);
            pages.text(right - 95, BOLD, BODY, value);
        }
        pages.down(1);
    }

    // The buyer.
    pages.down(1);
    pages.text(MARGIN, BOLD, BODY, &labels.bill_to);
    pages.down(1);
    let f = &account.fields;
    let mut buyer = vec![f.invoice_name.clone().unwrap_or_else(|| f.name.clone())];
    buyer.extend(f.contact_person.clone());
    buyer.extend(f.address.clone());
    let place: Vec<&str> = [f.zip.as_deref(), f.city.as_deref(), f.state.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if !place.is_empty() {
        buyer.push(place.join(" "));
    }
    buyer.extend(f.country.map(|c| c.alpha2().to_owned()));
    buyer.push(f.email.as_str().to_owned());
    if let Some(number) = f.tax_exemption_number.as_ref().filter(|_| f.tax_exempt) {
        buyer.push(format!("Tax exemption {number}"));
    }
    for line in &buyer {
        pages.text(MARGIN, REGULAR, BODY, line);
        pages.down(1);
    }

    // The lines.
    pages.down(1);
    let heading = |pages: &mut Pages| {
        pages.text(MARGIN, BOLD, SMALL, &labels.description);
        pages.text(period_x, BOLD, SMALL, &labels.period);
        pages.text_right(quantity_r, BOLD, 80, &labels.quantity);
        pages.text_right(price_r, BOLD, 80, &labels.unit_price);
        pages.text_right(
            right,
            BOLD,
            80,
            &format!("{} ({})", labels.amount, currency.code()),
        );
        pages.down(1);
        pages.rule();
    };
    heading(&mut pages);
    for line in &invoice.lines {
        let taxes = line.taxes.len() as i32;
        if pages.room(2 + taxes) {
            heading(&mut pages);
        }
        pages.down(1);
        let description: String = line.description.chars().take(52).collect();
        pages.text(MARGIN, REGULAR, BODY, &description);
        pages.text(
            period_x,
            REGULAR,
            BODY,
            &format!("{} – {}", line.service_start, line.service_end),
        );
        pages.text_right(quantity_r, REGULAR, 95, &shapes::decimal(line.quantity));
        pages.text_right(price_r, REGULAR, 95, &amount(line.unit_price, currency));
        pages.text_right(right, REGULAR, 95, &amount(line.amount, currency));
        for tax in &line.taxes {
            pages.down(1);
            let jurisdiction = tax
                .jurisdiction
                .as_deref()
                .map(|j| format!(" ({j})"))
                .unwrap_or_default();
            let rate = tax
                .rate
                .map(|r| format!(" {}%", shapes::decimal(r)))
                .unwrap_or_default();
            pages.text(
                MARGIN + 12,
                REGULAR,
                SMALL,
                &format!("{}{rate}{jurisdiction}", tax.description),
            );
            pages.text_right(right, REGULAR, 80, &amount(tax.amount, currency));
        }
    }

    // Totals.
    pages.room(7);
    pages.down(1);
    pages.rule();
    let mut totals = vec![
        (&labels.subtotal, invoice.subtotal, false),
        (&labels.tax, invoice.tax_total, false),
        (&labels.total, invoice.total, true),
    ];
    if !invoice.credit_applied.is_zero() {
        totals.push((&labels.credit_applied, -invoice.credit_applied, false));
    }
    totals.push((&labels.amount_due, invoice.amount_due, true));
    for (label, value, strong) in totals {
        pages.down(1);
        let font = if strong { BOLD } else { REGULAR };
        pages.text(price_r - 90, font, BODY, label);
        pages.text_right(
            right,
            font,
            95,
            &format!("{} {}", amount(value, currency), currency.code()),
        );
    }
    if let Some(paid) = invoice.paid_date {
        pages.down(1);
        let reference = invoice
            .payment_reference
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        pages.text(
            price_r - 90,
            REGULAR,
            SMALL,
            &format!("{} {paid}{reference}", labels.paid),
        );
    }
    if !template.footer.is_empty() {
        pages.room(template.footer.len() as i32 + 2);
        pages.down(2);
        for line in &template.footer {
            pages.text(MARGIN, REGULAR, SMALL, line);
            pages.down(1);
        }
    }
    let last = std::mem::replace(&mut pages.current, Content::new());
    pages.done.push(last);
    finish(template, invoice, pages)
}

/// Writes the document: catalog, page tree, fonts, and each page with its number.
fn finish(template: &InvoiceTemplate, invoice: &Invoice, pages: Pages) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let count = pages.done.len() as i32;
    let first_page = 6;
    let page_refs: Vec<Ref> = (0..count).map(|n| Ref::new(first_page + 2 * n)).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_refs.iter().copied()).count(count);
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    let title = format!(
        "{} {}",
        template.title,
        invoice.number.as_deref().unwrap_or("")
    );
    pdf.document_info(info)
        .title(TextStr(title.trim()))
        .producer(TextStr("dynabill"));
    let (width, height) = (pages.width, pages.height);
    for (n, mut content) in pages.done.into_iter().enumerate() {
        let number = n as i32 + 1;
        if count > 1 {
            let text = win_ansi(&format!("{} {number} / {count}", template.labels.page));
            content
                .begin_text()
                .set_font(REGULAR, SMALL)
                .next_line(MARGIN as f32, (MARGIN - 20) as f32)
                .show(Str(&text))
                .end_text();
        }
        let page_ref = page_refs[n];
        let content_ref = Ref::new(page_ref.get() + 1);
        let mut page = pdf.page(page_ref);
        page.media_box(Rect::new(0.0, 0.0, width as f32, height as f32));
        page.parent(tree);
        page.contents(content_ref);
        page.resources()
            .fonts()
            .pair(REGULAR, regular)
            .pair(BOLD, bold);
        page.finish();
        pdf.stream(content_ref, &content.finish());
    }
    pdf.finish()
}
