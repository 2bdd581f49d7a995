//! Reader languages: negotiation, UI strings and dates shown in the audience's time zone.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Vi, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Vi => Lang::En,
            Lang::En => Lang::Vi,
        }
    }

    /// `?lang=`, then the `lang` cookie, then `Accept-Language`, then Vietnamese.
    pub fn negotiate(query: Option<&str>, cookie: Option<&str>, accept: Option<&str>) -> Lang {
        query
            .and_then(Lang::parse)
            .or_else(|| cookie.and_then(Lang::parse))
            .or_else(|| accept.and_then(from_accept_language))
            .unwrap_or(Lang::Vi)
    }
}

/// Picks the supported language with the highest q-value (ties go to the earlier entry).
fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(Lang, f32)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let primary = tag.split('-').next().unwrap_or("");
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if let Some(lang) = Lang::parse(primary)
            && q > 0.0
            && best.is_none_or(|(_, bq)| q > bq)
        {
            best = Some((lang, q));
        }
    }
    best.map(|(l, _)| l)
}

/// The audience's clock: Vietnam, UTC+7, no daylight saving.
pub fn local_offset() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("UTC+7 is a valid offset")
}

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The English name of month `m` (1-12).
pub fn month_name(m: u32) -> &'static str {
    MONTHS_EN
        .get(m.saturating_sub(1) as usize)
        .copied()
        .unwrap_or_default()
}

/// A calendar date as readers write it: "20 tháng 11, 2026" / "November 20, 2026".
pub fn format_date(at: DateTime<Utc>, lang: Lang) -> String {
    let t = at.with_timezone(&local_offset());
    match lang {
        Lang::Vi => format!("{} tháng {}, {}", t.day(), t.month(), t.year()),
        Lang::En => format!(
            "{} {}, {}",
            MONTHS_EN[t.month0() as usize],
            t.day(),
            t.year()
        ),
    }
}

/// How long before `now` something happened, in whole units, as `Intl.RelativeTimeFormat`
/// writes it with `numeric: "always"` (the page script refreshes it with that):
/// "15 ngày trước" / "15 days ago", "16 tháng trước" / "16 months ago".
pub fn format_age(at: DateTime<Utc>, now: DateTime<Utc>, lang: Lang) -> String {
    let minutes = (now - at).num_minutes().max(0);
    let days = minutes / (24 * 60);
    let (n, vi, en) = if minutes < 60 {
        (minutes.max(1), "phút", "minute")
    } else if minutes < 24 * 60 {
        (minutes / 60, "giờ", "hour")
    } else if days < 45 {
        (days, "ngày", "day")
    } else if days < 730 {
        ((days as f64 / 30.44) as i64, "tháng", "month")
    } else {
        ((days as f64 / 365.25) as i64, "năm", "year")
    };
    match lang {
        Lang::Vi => format!("{n} {vi} trước"),
        Lang::En if n == 1 => format!("1 {en} ago"),
        Lang::En => format!("{n} {en}s ago"),
    }
}

/// Date and time with the zone label: "20/11/2026 15:00 (UTC+7)" / "Nov 20, 2026, 15:00 (UTC+7)".
pub fn format_datetime(at: DateTime<Utc>, lang: Lang) -> String {
    let t = at.with_timezone(&local_offset());
    match lang {
        Lang::Vi => format!(
            "{:02}/{:02}/{} {:02}:{:02} (UTC+7)",
            t.day(),
            t.month(),
            t.year(),
            t.hour(),
            t.minute()
        ),
        Lang::En => format!(
            "{} {}, {}, {:02}:{:02} (UTC+7)",
            &MONTHS_EN[t.month0() as usize][..3],
            t.day(),
            t.year(),
            t.hour(),
            t.minute()
        ),
    }
}

/// UI strings: key, Vietnamese, English. Templates use `t.<key>`; the page script swaps them.
const STRINGS: &[(&str, &str, &str)] = &[
    ("site_name", "Báo cáo Crypto", "Crypto Report"),
    (
        "site_tagline",
        "Phân tích thị trường tiền mã hoá mỗi ngày",
        "Daily crypto market analysis",
    ),
    (
        "site_description",
        "Báo cáo phân tích thị trường tiền mã hoá mỗi ngày, bằng tiếng Việt và tiếng Anh, bên cạnh bảng giá trực tiếp.",
        "Daily crypto market reports in Vietnamese and English, next to a live market dashboard.",
    ),
    ("main_nav", "Điều hướng chính", "Main navigation"),
    ("nav_home", "Trang chủ", "Home"),
    ("nav_latest", "Báo cáo mới nhất", "Latest report"),
    ("nav_latest_short", "Mới nhất", "Latest"),
    ("nav_reports", "Tất cả báo cáo", "All reports"),
    ("nav_reports_short", "Lưu trữ", "Archive"),
    (
        "toggle_theme",
        "Đổi giao diện sáng/tối",
        "Toggle light/dark theme",
    ),
    ("toggle_lang", "Switch to English", "Chuyển sang tiếng Việt"),
    ("toggle_lang_short", "EN", "VI"),
    (
        "report_title",
        "Báo cáo thị trường crypto",
        "Crypto market report",
    ),
    ("published", "Xuất bản", "Published"),
    ("toc", "Mục lục", "Contents"),
    ("read_report", "Đọc báo cáo", "Read the report"),
    ("recent_reports", "Báo cáo gần đây", "Recent reports"),
    ("latest_report", "Báo cáo mới nhất", "Latest report"),
    ("all_reports", "Xem tất cả báo cáo", "See all reports"),
    ("prev_report", "Báo cáo trước", "Previous report"),
    ("next_report", "Báo cáo sau", "Next report"),
    ("print_pdf", "In / Lưu PDF", "Print / Save as PDF"),
    ("print", "In", "Print"),
    ("back_to_report", "Quay lại báo cáo", "Back to the report"),
    ("no_reports", "Chưa có báo cáo nào.", "No reports yet."),
    ("reports_total", "Tổng số báo cáo", "Reports in total"),
    ("page", "Trang", "Page"),
    ("page_prev", "Trang trước", "Previous page"),
    ("page_next", "Trang sau", "Next page"),
    ("pagination", "Phân trang", "Pagination"),
    (
        "report_neighbours",
        "Báo cáo trước và sau",
        "Previous and next reports",
    ),
    ("vi_only", "Chỉ có tiếng Việt", "Vietnamese only"),
    (
        "english_missing",
        "Báo cáo này chỉ có bản tiếng Việt.",
        "This report is only available in Vietnamese.",
    ),
    ("market_title", "Thị trường", "Market"),
    (
        "market_pending",
        "Bảng thị trường trực tiếp sẽ hiển thị tại đây.",
        "The live market dashboard appears here.",
    ),
    (
        "disclaimer_title",
        "Tuyên bố miễn trừ trách nhiệm",
        "Disclaimer",
    ),
    (
        "disclaimer",
        "Nội dung chỉ nhằm mục đích thông tin, không phải lời khuyên đầu tư. Tiền mã hoá biến động mạnh; hãy tự nghiên cứu trước khi quyết định.",
        "This content is for information only and is not investment advice. Crypto assets are highly volatile; do your own research before deciding.",
    ),
    ("error_400_title", "Yêu cầu không hợp lệ", "Bad request"),
    (
        "error_400_text",
        "Địa chỉ này không hợp lệ. Hãy kiểm tra lại đường dẫn.",
        "This address is not valid. Please check the link.",
    ),
    ("error_404_title", "Không tìm thấy", "Not found"),
    (
        "error_404_text",
        "Trang bạn tìm không tồn tại hoặc đã bị xoá.",
        "The page you are looking for does not exist or was removed.",
    ),
    ("error_500_title", "Lỗi máy chủ", "Server error"),
    (
        "error_500_text",
        "Đã có lỗi xảy ra. Vui lòng thử lại sau.",
        "Something went wrong. Please try again later.",
    ),
    (
        "error_503_title",
        "Tạm thời không khả dụng",
        "Temporarily unavailable",
    ),
    (
        "error_503_text",
        "Máy chủ đang bận. Vui lòng thử lại sau giây lát.",
        "The server is busy. Please try again shortly.",
    ),
    ("go_home", "Về trang chủ", "Go to the home page"),
    ("skip_to_content", "Bỏ qua đến nội dung", "Skip to content"),
    ("report_frame_title", "Nội dung báo cáo", "Report content"),
    (
        "report_blocked",
        "Nội dung báo cáo đã bị ẩn vì nó cố điều hướng khung hiển thị sang trang khác.",
        "The report content was hidden because it tried to navigate its frame to another page.",
    ),
    (
        "print_blocked",
        "Biểu đồ không được vẽ vì mã của báo cáo cố điều hướng sang trang khác.",
        "The charts were not drawn because the report's script tried to navigate away.",
    ),
    (
        "since_title",
        "Từ khi báo cáo này ra đời",
        "Since this report",
    ),
    ("since_measure", "Chỉ số", "Measure"),
    ("since_then", "Lúc xuất bản", "At publication"),
    ("since_now", "Hiện tại", "Now"),
    ("since_change", "Thay đổi", "Change"),
    ("since_btc", "Giá BTC", "BTC price"),
    ("since_eth", "Giá ETH", "ETH price"),
    ("since_market_cap", "Tổng vốn hoá", "Total market cap"),
    ("since_dominance", "Tỷ lệ thống trị BTC", "BTC dominance"),
    ("since_fng", "Sợ hãi & Tham lam", "Fear & Greed"),
    ("since_unknown", "không rõ", "unknown"),
    ("since_points", "điểm", "pts"),
    (
        "since_none",
        "không rõ lúc xuất bản.",
        "not known at publication.",
    ),
    (
        "since_foot",
        "Giá trị lúc xuất bản được ghi lại khi báo cáo ra đời, hoặc lấy từ lịch sử của nhà cung cấp (đầu ngày, giờ UTC); giá trị hiện tại cập nhật trực tiếp. Không có số nào được ước đoán.",
        "Values at publication were recorded as the report came out, or come from the providers' daily history (start of the UTC day); the current values are live. No number is estimated.",
    ),
    ("archive_title", "Lưu trữ theo tháng", "Archive by month"),
    (
        "archive_description",
        "Mọi báo cáo thị trường crypto, theo từng tháng.",
        "Every crypto market report, month by month.",
    ),
    ("archive_reports", "báo cáo", "reports"),
    ("archive_prev", "Tháng trước", "Previous month"),
    ("archive_next", "Tháng sau", "Next month"),
    ("archive_all", "Tất cả các tháng", "All months"),
    ("feed_vi", "RSS tiếng Việt", "RSS in Vietnamese"),
    ("feed_en", "RSS tiếng Anh", "RSS in English"),
    ("search_title", "Tìm kiếm", "Search"),
    (
        "search_label",
        "Tìm trong các báo cáo",
        "Search the reports",
    ),
    ("search_placeholder", "Tìm báo cáo…", "Search reports…"),
    ("search_button", "Tìm", "Search"),
    ("search_from", "Từ ngày", "From"),
    ("search_to", "Đến ngày", "To"),
    ("search_results", "báo cáo khớp", "matching reports"),
    (
        "search_none",
        "Không có báo cáo nào khớp. Hãy thử từ khác hoặc bỏ giới hạn ngày.",
        "No report matches. Try other words or remove the dates.",
    ),
    (
        "search_hint",
        "Tìm trong mọi báo cáo, tiếng Việt và tiếng Anh. Gõ không dấu để tìm mọi cách viết, có dấu để tìm đúng từ đó; đặt cụm từ trong ngoặc kép để chỉ tìm cả cụm.",
        "Searches every report in Vietnamese and English. Without accents a word matches every spelling, with accents only that one; put words in quotes to find them only together.",
    ),
    (
        "search_apart",
        "Các báo cáo dưới đây có đủ những từ bạn gõ, nhưng không đứng liền nhau.",
        "The reports below hold the words you typed, but not side by side.",
    ),
    (
        "search_error_from",
        "Ngày bắt đầu “{from}” không phải là một ngày: hãy nhập theo dạng năm-tháng-ngày (YYYY-MM-DD).",
        "The start date “{from}” is not a date: enter it as year-month-day (YYYY-MM-DD).",
    ),
    (
        "search_error_to",
        "Ngày kết thúc “{to}” không phải là một ngày: hãy nhập theo dạng năm-tháng-ngày (YYYY-MM-DD).",
        "The end date “{to}” is not a date: enter it as year-month-day (YYYY-MM-DD).",
    ),
    (
        "search_error_dates",
        "“{from}” và “{to}” không phải là ngày: hãy nhập theo dạng năm-tháng-ngày (YYYY-MM-DD).",
        "Neither “{from}” nor “{to}” is a date: enter dates as year-month-day (YYYY-MM-DD).",
    ),
    (
        "search_error_reversed",
        "Ngày bắt đầu ({from}) sau ngày kết thúc ({to}): hãy đổi chỗ hai ngày hoặc sửa một ngày.",
        "The start date ({from}) is after the end date ({to}): swap them or change one.",
    ),
    (
        "search_catching_up",
        "Chỉ mục tìm kiếm đang được cập nhật: vài báo cáo có thể chưa xuất hiện.",
        "The search index is catching up: a few reports may be missing for now.",
    ),
    (
        "time_zone_note",
        "Giờ Việt Nam (UTC+7)",
        "Vietnam time (UTC+7)",
    ),
];

/// The UI strings of one language, keyed for templates and the page script.
pub fn strings(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    STRINGS
        .iter()
        .map(|(k, vi, en)| (*k, if lang == Lang::Vi { *vi } else { *en }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_order() {
        assert_eq!(Lang::negotiate(Some("en"), Some("vi"), None), Lang::En);
        assert_eq!(Lang::negotiate(Some("xx"), Some("en"), None), Lang::En);
        assert_eq!(
            Lang::negotiate(None, None, Some("fr, en-US;q=0.8")),
            Lang::En
        );
        assert_eq!(
            Lang::negotiate(None, None, Some("en;q=0.5, vi;q=0.9")),
            Lang::Vi
        );
        assert_eq!(Lang::negotiate(None, None, Some("en;q=0")), Lang::Vi);
        assert_eq!(Lang::negotiate(None, None, None), Lang::Vi);
    }

    #[test]
    fn dates_are_shown_in_vietnam_time() {
        let at: DateTime<Utc> = "2026-11-20T20:30:00Z".parse().expect("valid");
        assert_eq!(format_date(at, Lang::Vi), "21 tháng 11, 2026");
        assert_eq!(format_date(at, Lang::En), "November 21, 2026");
        assert_eq!(format_datetime(at, Lang::Vi), "21/11/2026 03:30 (UTC+7)");
        assert_eq!(format_datetime(at, Lang::En), "Nov 21, 2026, 03:30 (UTC+7)");
    }

    #[test]
    fn ages_in_whole_units() {
        let now: DateTime<Utc> = "2026-12-06T12:00:00Z".parse().expect("valid");
        for (at, lang, want) in [
            ("2026-12-06T11:59:50Z", Lang::En, "1 minute ago"),
            ("2026-12-06T09:00:00Z", Lang::Vi, "3 giờ trước"),
            ("2026-11-21T08:00:00Z", Lang::En, "15 days ago"),
            ("2025-08-01T08:00:00Z", Lang::En, "16 months ago"),
            ("2025-08-01T08:00:00Z", Lang::Vi, "16 tháng trước"),
            ("2023-12-01T08:00:00Z", Lang::En, "3 years ago"),
        ] {
            let at: DateTime<Utc> = at.parse().expect("valid");
            assert_eq!(format_age(at, now, lang), want);
        }
    }

    #[test]
    fn both_languages_have_every_key() {
        let vi = strings(Lang::Vi);
        let en = strings(Lang::En);
        assert_eq!(vi.len(), STRINGS.len(), "duplicate key");
        assert_eq!(vi.keys().collect::<Vec<_>>(), en.keys().collect::<Vec<_>>());
        assert!(vi.values().chain(en.values()).all(|v| !v.is_empty()));
    }
}
