//! The fonts an invoice PDF embeds: TrueType files, cut down to the glyphs the
//! document shows (`subsetter`), written as CID fonts (`Identity-H`, two bytes
//! per glyph) with a `ToUnicode` map so that the text can be searched, copied
//! and read back (`pdftotext`). Any script the font covers prints; there is no
//! shaping, so scripts that need it (Arabic, the Indic scripts) are out of
//! reach, and text runs left to right.
//!
//! Without a font in the template, DejaVu Sans (the `dejavu` crate; Latin,
//! Greek, Cyrillic and more) is built in. Everything here is deterministic:
//! glyphs are numbered in the order the document first uses them, and the
//! subset's tag is a hash of that list.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Filter, Finish, Name, Pdf, Rect, Ref, Str};
use subsetter::GlyphRemapper;

/// A TrueType font file the document can embed, checked when it is loaded.
#[derive(Debug)]
pub struct FontFile {
    data: Cow<'static, [u8]>,
    /// Its PostScript name, which the PDF names it by.
    name: String,
}

impl FontFile {
    /// DejaVu Sans, built into the binary.
    pub fn builtin_regular() -> FontFile {
        FontFile::check(Cow::Borrowed(dejavu::sans::regular()))
            .expect("DejaVu Sans is a TrueType font")
    }

    /// DejaVu Sans Bold, built into the binary.
    pub fn builtin_bold() -> FontFile {
        FontFile::check(Cow::Borrowed(dejavu::sans::bold()))
            .expect("DejaVu Sans Bold is a TrueType font")
    }

    /// Reads a TrueType font file (`.ttf`, or the first face of a `.ttc`).
    pub fn read(path: &Path) -> Result<FontFile, String> {
        let data = std::fs::read(path).map_err(|e| format!("font {}: {e}", path.display()))?;
        FontFile::check(Cow::Owned(data)).map_err(|e| format!("font {}: {e}", path.display()))
    }

    fn check(data: Cow<'static, [u8]>) -> Result<FontFile, String> {
        let face =
            ttf_parser::Face::parse(&data, 0).map_err(|e| format!("not a font file ({e})"))?;
        let tables = face.tables();
        if tables.glyf.is_none() {
            return Err("has no TrueType outlines (a `glyf` table): CFF-flavoured OpenType (.otf) is not supported, use the font's .ttf".into());
        }
        if tables.cmap.is_none() {
            return Err("has no character map (`cmap` table)".into());
        }
        let name = face
            .names()
            .into_iter()
            .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
            .find_map(|n| n.to_string())
            .map(|n| {
                n.chars()
                    .filter(|c| c.is_ascii_graphic() && !"()<>[]{}/%#".contains(*c))
                    .collect::<String>()
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "Embedded".into());
        Ok(FontFile { data, name })
    }
}

/// A font as one document uses it: the glyphs shown so far, numbered in the
/// order of first use (those numbers are the CIDs the content streams hold).
pub(super) struct Embedding<'f> {
    file: &'f FontFile,
    face: ttf_parser::Face<'f>,
    glyphs: GlyphRemapper,
    /// By CID: the character the glyph was first used for, and its advance in
    /// thousandths of an em.
    used: Vec<(char, i32)>,
}

impl<'f> Embedding<'f> {
    pub(super) fn new(file: &'f FontFile) -> Embedding<'f> {
        let face = ttf_parser::Face::parse(&file.data, 0).expect("checked when loaded");
        Embedding {
            file,
            face,
            glyphs: GlyphRemapper::new(),
            used: vec![('\u{fffd}', 0)],
        }
    }

    /// Whether the font has a glyph for `c`.
    pub(super) fn has(&self, c: char) -> bool {
        self.face.glyph_index(c).is_some()
    }

    /// Whether the document shows any of the font's glyphs.
    pub(super) fn is_used(&self) -> bool {
        self.used.len() > 1
    }

    /// The glyph for `c`; a character the font lacks shows as `?`.
    fn glyph(&self, c: char) -> (ttf_parser::GlyphId, char) {
        match self.face.glyph_index(c) {
            Some(glyph) => (glyph, c),
            None => (
                self.face.glyph_index('?').unwrap_or(ttf_parser::GlyphId(0)),
                '?',
            ),
        }
    }

    fn advance(&self, glyph: ttf_parser::GlyphId) -> i32 {
        let units = i32::from(self.face.units_per_em());
        let advance = i32::from(self.face.glyph_hor_advance(glyph).unwrap_or(0));
        (advance * 1000 + units / 2) / units
    }

    /// The width of `c` in thousandths of an em, without using its glyph.
    pub(super) fn width(&self, c: char) -> i32 {
        self.advance(self.glyph(c).0)
    }

    /// `c` as the content stream shows it (two bytes: its CID), its glyph
    /// taken into the subset.
    pub(super) fn encode(&mut self, c: char) -> [u8; 2] {
        let (glyph, shown) = self.glyph(c);
        let cid = self.glyphs.remap(glyph.0);
        if usize::from(cid) == self.used.len() {
            self.used.push((shown, self.advance(glyph)));
        }
        cid.to_be_bytes()
    }

    /// A subset's tag: six capitals from a hash of its glyphs (FNV-1a), so that
    /// two subsets of one font in a reader's cache do not collide.
    fn tag(&self) -> String {
        let mut hash: u32 = 0x811c_9dc5;
        for glyph in self.glyphs.remapped_gids() {
            for byte in glyph.to_be_bytes() {
                hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
            }
        }
        (0..6)
            .map(|n| char::from(b'A' + ((hash >> (5 * n)) % 26) as u8))
            .collect()
    }

    fn scaled(&self, units: i16) -> f32 {
        let em = i32::from(self.face.units_per_em());
        ((i32::from(units) * 1000) / em) as f32
    }

    /// Writes the font: the Type 0 font at `font` (what pages name), then its
    /// CID font, descriptor, subset file and `ToUnicode` map at the four
    /// references after it.
    pub(super) fn write(&self, pdf: &mut Pdf, font: Ref) {
        let [cid, descriptor, file, cmap] = [1, 2, 3, 4].map(|n| Ref::new(font.get() + n));
        let name = format!("{}+{}", self.tag(), self.file.name);
        let name = Name(name.as_bytes());
        let system = SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"Identity"),
            supplement: 0,
        };
        pdf.type0_font(font)
            .base_font(name)
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid)
            .to_unicode(cmap);
        let mut cid_font = pdf.cid_font(cid);
        cid_font
            .subtype(CidFontType::Type2)
            .base_font(name)
            .system_info(system)
            .font_descriptor(descriptor)
            .default_width(0.0)
            .cid_to_gid_map_predefined(Name(b"Identity"));
        cid_font
            .widths()
            .consecutive(0, self.used.iter().map(|&(_, width)| width as f32));
        cid_font.finish();

        let face = &self.face;
        let bbox = face.global_bounding_box();
        let weight = i32::from(face.weight().to_number());
        let mut flags = FontFlags::NON_SYMBOLIC;
        if face.is_italic() {
            flags |= FontFlags::ITALIC;
        }
        pdf.font_descriptor(descriptor)
            .name(name)
            .flags(flags)
            .bbox(Rect::new(
                self.scaled(bbox.x_min),
                self.scaled(bbox.y_min),
                self.scaled(bbox.x_max),
                self.scaled(bbox.y_max),
            ))
            .italic_angle(face.italic_angle())
            .ascent(self.scaled(face.ascender()))
            .descent(self.scaled(face.descender()))
            .cap_height(self.scaled(face.capital_height().unwrap_or(face.ascender())))
            .stem_v((10 + 244 * (weight - 50) / 1000) as f32)
            .font_file2(file);

        let subset = subsetter::subset(&self.file.data, 0, &self.glyphs)
            .expect("a checked TrueType font subsets");
        pdf.stream(file, &deflate(&subset))
            .filter(Filter::FlateDecode)
            .pair(Name(b"Length1"), subset.len() as i32);

        let mut map = UnicodeCmap::new(Name(b"Custom"), system);
        for (cid, &(c, _)) in self.used.iter().enumerate().skip(1) {
            map.pair(cid as u16, c);
        }
        pdf.cmap(cmap, &map.finish());
    }
}

/// Compresses a stream (zlib, as `FlateDecode` wants); the same bytes in, the
/// same bytes out.
pub(super) fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}
