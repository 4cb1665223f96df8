//! Invoices as PDF: an A4 or Letter document drawn in process with
//! `pdf-writer`, its text in an embedded subset of a TrueType font (DejaVu Sans
//! unless the template names another; [`font`]), so that any script the font
//! covers prints and reads back. The same invoice always gives the same bytes:
//! no creation date, no random document ID.
//!
//! What the document says around the invoice (the seller's block, the labels,
//! a footer, the paper size, the accent colour, the fonts) is an
//! [`InvoiceTemplate`], overridable by a TOML file (`serve --invoice-template
//! FILE`).
//!
//! Layout is computed in whole points (`i32`): the workspace keeps float
//! arithmetic out, and a point is finer than print needs.

mod font;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dynabill_app::model::{Account, Invoice, Tenant};
use dynabill_core::money::Currency;
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use rust_decimal::Decimal;
use serde::Deserialize;

use self::font::Embedding;
pub use self::font::FontFile;
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
    /// TrueType files for the text, relative to the template's directory;
    /// without them, DejaVu Sans (built in).
    pub fonts: FontPaths,
    /// The fonts themselves, read from `fonts` when the template is loaded.
    #[serde(skip)]
    faces: Faces,
}

/// Where the template's fonts are.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FontPaths {
    /// The font of the text.
    pub regular: Option<PathBuf>,
    /// The font of headings and totals; without it, `regular`'s.
    pub bold: Option<PathBuf>,
    /// The font of the characters `regular` (or `bold`) lacks, such as a CJK
    /// font beside the built-in one.
    pub fallback: Option<PathBuf>,
}

/// The fonts a document is written in.
#[derive(Clone, Debug)]
struct Faces {
    regular: Arc<FontFile>,
    bold: Arc<FontFile>,
    fallback: Option<Arc<FontFile>>,
}

impl Default for Faces {
    fn default() -> Faces {
        static BUILTIN: std::sync::LazyLock<Faces> = std::sync::LazyLock::new(|| Faces {
            regular: Arc::new(FontFile::builtin_regular()),
            bold: Arc::new(FontFile::builtin_bold()),
            fallback: None,
        });
        BUILTIN.clone()
    }
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
            fonts: FontPaths::default(),
            faces: Faces::default(),
        }
    }
}

impl InvoiceTemplate {
    /// Reads a template file (TOML) and the fonts it names; what it leaves out
    /// keeps its default.
    pub fn from_file(path: &Path) -> Result<InvoiceTemplate, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        InvoiceTemplate::from_toml(&text, path.parent().unwrap_or(Path::new(".")))
    }

    /// A template from its TOML text, its font paths relative to `directory`.
    pub fn from_toml(text: &str, directory: &Path) -> Result<InvoiceTemplate, String> {
        let mut template: InvoiceTemplate = toml::from_str(text).map_err(|e| e.to_string())?;
        let read = |path: &Path| FontFile::read(&directory.join(path)).map(Arc::new);
        match (&template.fonts.regular, &template.fonts.bold) {
            (Some(regular), bold) => {
                let regular = read(regular)?;
                let bold = match bold {
                    Some(bold) => read(bold)?,
                    None => regular.clone(),
                };
                template.faces.regular = regular;
                template.faces.bold = bold;
            }
            (None, Some(_)) => {
                return Err("fonts: `bold` is given without `regular`".into());
            }
            (None, None) => {}
        }
        if let Some(fallback) = &template.fonts.fallback {
            template.faces.fallback = Some(read(fallback)?);
        }
        Ok(template)
    }
}

const MARGIN: i32 = 50;
const LINE: i32 = 13;

/// A text size: in tenths of a point for layout (integers), in points for PDF.
#[derive(Clone, Copy)]
struct Size {
    tenths: i32,
    points: f32,
}

const BODY: Size = Size {
    tenths: 95,
    points: 9.5,
};
const SMALL: Size = Size {
    tenths: 80,
    points: 8.0,
};
const STAMP: Size = Size {
    tenths: 140,
    points: 14.0,
};
const TITLE: Size = Size {
    tenths: 200,
    points: 20.0,
};

/// The faces of the document (the fallback font serves both weights).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Font {
    Regular,
    Bold,
    Fallback,
}

impl Font {
    /// The name a page's resources give it.
    fn name(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
            Font::Fallback => Name(b"F3"),
        }
    }
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
struct Pages<'f> {
    done: Vec<Content>,
    current: Content,
    y: i32,
    width: i32,
    height: i32,
    accent: [u8; 3],
    regular: Embedding<'f>,
    bold: Embedding<'f>,
    fallback: Option<Embedding<'f>>,
}

impl<'f> Pages<'f> {
    fn new(template: &'f InvoiceTemplate) -> Pages<'f> {
        let (width, height) = template.paper.size();
        Pages {
            done: Vec::new(),
            current: Content::new(),
            y: height - MARGIN,
            width,
            height,
            accent: template.accent,
            regular: Embedding::new(&template.faces.regular),
            bold: Embedding::new(&template.faces.bold),
            fallback: template.faces.fallback.as_deref().map(Embedding::new),
        }
    }

    fn right(&self) -> i32 {
        self.width - MARGIN
    }

    fn font(&mut self, font: Font) -> &mut Embedding<'f> {
        match (font, &mut self.fallback) {
            (Font::Bold, _) => &mut self.bold,
            (Font::Fallback, Some(fallback)) => fallback,
            _ => &mut self.regular,
        }
    }

    /// The face that shows `c` in `font`: the font itself, or the fallback
    /// when only it has the character.
    fn face_for(&self, font: Font, c: char) -> Font {
        let main = if font == Font::Bold {
            &self.bold
        } else {
            &self.regular
        };
        match &self.fallback {
            Some(fallback) if !main.has(c) && fallback.has(c) => Font::Fallback,
            _ => font,
        }
    }

    /// The width of `text` in whole points (rounded up).
    fn width_of(&mut self, font: Font, size: Size, text: &str) -> i32 {
        let milli_em: i32 = text
            .chars()
            .map(|c| {
                let face = self.face_for(font, c);
                self.font(face).width(c)
            })
            .sum();
        (milli_em * size.tenths + 9_999) / 10_000
    }

    /// `text` as runs of one face each, encoded for the content stream.
    fn runs(&mut self, font: Font, text: &str) -> Vec<(Font, Vec<u8>)> {
        let mut runs: Vec<(Font, Vec<u8>)> = Vec::new();
        for c in text.chars() {
            let face = self.face_for(font, c);
            let bytes = self.font(face).encode(c);
            match runs.last_mut() {
                Some((last, run)) if *last == face => run.extend(bytes),
                _ => runs.push((face, bytes.to_vec())),
            }
        }
        runs
    }

    /// Shows `text` at (`x`, `y`) in `content`.
    fn show(&mut self, content: &mut Content, x: i32, y: i32, font: Font, size: Size, text: &str) {
        content.begin_text().next_line(x as f32, y as f32);
        for (face, bytes) in self.runs(font, text) {
            content.set_font(face.name(), size.points).show(Str(&bytes));
        }
        content.end_text();
    }

    /// `text` cut, with an ellipsis, to fit in `width` points.
    fn fit(&mut self, font: Font, size: Size, text: &str, width: i32) -> String {
        if self.width_of(font, size, text) <= width {
            return text.to_owned();
        }
        let mut cut: String = text.to_owned();
        while cut.pop().is_some() {
            let candidate = format!("{}…", cut.trim_end());
            if self.width_of(font, size, &candidate) <= width {
                return candidate;
            }
        }
        String::new()
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

    fn text(&mut self, x: i32, font: Font, size: Size, text: &str) {
        let mut content = std::mem::replace(&mut self.current, Content::new());
        self.show(&mut content, x, self.y, font, size, text);
        self.current = content;
    }

    /// Text ending at `right` (amounts).
    fn text_right(&mut self, right: i32, font: Font, size: Size, text: &str) {
        let width = self.width_of(font, size, text);
        self.text(right - width, font, size, text);
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
    let mut pages = Pages::new(template);
    let right = pages.right();
    // Columns: description, period, quantity (right), unit price (right), amount (right).
    let (period_x, quantity_r, price_r) = (right - 300, right - 140, right - 75);

    // Heading: the title and the seller on the left, the invoice's facts on the right.
    pages.text(MARGIN, Font::Bold, TITLE, &template.title);
    let stamp = match invoice.status {
        dynabill_core::domain::InvoiceStatus::Paid => Some(&labels.paid),
        dynabill_core::domain::InvoiceStatus::Cancelled => Some(&labels.cancelled),
        dynabill_core::domain::InvoiceStatus::Draft => Some(&labels.draft),
        _ => None,
    };
    if let Some(stamp) = stamp {
        pages.text(right - 120, Font::Bold, STAMP, stamp);
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
            pages.text(
                MARGIN,
                if row == 0 { Font::Bold } else { Font::Regular },
                BODY,
                line,
            );
        }
        if let Some((label, value)) = facts.get(row) {
            pages.text(right - 200, Font::Regular, BODY, label);
            pages.text(right - 95, Font::Bold, BODY, value);
        }
        pages.down(1);
    }

    // The buyer.
    pages.down(1);
    pages.text(MARGIN, Font::Bold, BODY, &labels.bill_to);
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
        pages.text(MARGIN, Font::Regular, BODY, line);
        pages.down(1);
    }

    // The lines.
    pages.down(1);
    let heading = |pages: &mut Pages| {
        pages.text(MARGIN, Font::Bold, SMALL, &labels.description);
        pages.text(period_x, Font::Bold, SMALL, &labels.period);
        pages.text_right(quantity_r, Font::Bold, SMALL, &labels.quantity);
        pages.text_right(price_r, Font::Bold, SMALL, &labels.unit_price);
        pages.text_right(
            right,
            Font::Bold,
            SMALL,
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
        let description = pages.fit(
            Font::Regular,
            BODY,
            &line.description,
            period_x - MARGIN - 8,
        );
        pages.text(MARGIN, Font::Regular, BODY, &description);
        pages.text(
            period_x,
            Font::Regular,
            BODY,
            &format!("{} – {}", line.service_start, line.service_end),
        );
        pages.text_right(
            quantity_r,
            Font::Regular,
            BODY,
            &shapes::decimal(line.quantity),
        );
        pages.text_right(
            price_r,
            Font::Regular,
            BODY,
            &amount(line.unit_price, currency),
        );
        pages.text_right(right, Font::Regular, BODY, &amount(line.amount, currency));
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
                Font::Regular,
                SMALL,
                &format!("{}{rate}{jurisdiction}", tax.description),
            );
            pages.text_right(right, Font::Regular, SMALL, &amount(tax.amount, currency));
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
        let font = if strong { Font::Bold } else { Font::Regular };
        pages.text(price_r - 90, font, BODY, label);
        pages.text_right(
            right,
            font,
            BODY,
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
            Font::Regular,
            SMALL,
            &format!("{} {paid}{reference}", labels.paid),
        );
    }
    if !template.footer.is_empty() {
        pages.room(template.footer.len() as i32 + 2);
        pages.down(2);
        for line in &template.footer {
            pages.text(MARGIN, Font::Regular, SMALL, line);
            pages.down(1);
        }
    }
    let last = std::mem::replace(&mut pages.current, Content::new());
    pages.done.push(last);
    finish(template, invoice, pages)
}

/// Writes the document: catalog, page tree, each page with its number, and
/// the two fonts cut to the glyphs the pages use.
fn finish(template: &InvoiceTemplate, invoice: &Invoice, mut pages: Pages) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let info = Ref::new(3);
    // Each font takes five references (font, CID font, descriptor, file, map).
    let regular = Ref::new(4);
    let bold = Ref::new(9);
    let fallback = Ref::new(14);
    let first_page = 19;
    let count = pages.done.len() as i32;
    let page_refs: Vec<Ref> = (0..count).map(|n| Ref::new(first_page + 2 * n)).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_refs.iter().copied()).count(count);
    let title = format!(
        "{} {}",
        template.title,
        invoice.number.as_deref().unwrap_or("")
    );
    pdf.document_info(info)
        .title(TextStr(title.trim()))
        .producer(TextStr("dynabill"));
    let (width, height) = (pages.width, pages.height);
    let done = std::mem::take(&mut pages.done);
    for (n, mut content) in done.into_iter().enumerate() {
        let number = n as i32 + 1;
        if count > 1 {
            let text = format!("{} {number} / {count}", template.labels.page);
            pages.show(
                &mut content,
                MARGIN,
                MARGIN - 20,
                Font::Regular,
                SMALL,
                &text,
            );
        }
        let page_ref = page_refs[n];
        let content_ref = Ref::new(page_ref.get() + 1);
        let mut page = pdf.page(page_ref);
        page.media_box(Rect::new(0.0, 0.0, width as f32, height as f32));
        page.parent(tree);
        page.contents(content_ref);
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        fonts
            .pair(Font::Regular.name(), regular)
            .pair(Font::Bold.name(), bold);
        if pages.fallback.as_ref().is_some_and(Embedding::is_used) {
            fonts.pair(Font::Fallback.name(), fallback);
        }
        fonts.finish();
        resources.finish();
        page.finish();
        pdf.stream(content_ref, &font::deflate(&content.finish()))
            .filter(Filter::FlateDecode);
    }
    pages.regular.write(&mut pdf, regular);
    pages.bold.write(&mut pdf, bold);
    if let Some(used) = pages.fallback.as_ref().filter(|f| f.is_used()) {
        used.write(&mut pdf, fallback);
    }
    pdf.finish()
}
