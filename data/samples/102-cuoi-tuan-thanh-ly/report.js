// Only the intraday BTC chart is drawn here; the gauge, bar and doughnut charts of this
// report come from the CHART_DATA comments in the HTML and are rendered by the page.
function initializeAllVisuals_report(language) {
    var lang = language || (window.languageManager && window.languageManager.currentLanguage) || 'vi';
    var suffix = lang === 'en' ? '-en' : '';

    var intraday = document.getElementById('btc-intraday-chart-container' + suffix);
    if (!intraday) {
        return;
    }
    intraday.innerHTML = '';
    // 4-hour closes, Saturday 08:00 to Sunday 08:00 UTC
    createLineChart(intraday, [86420, 86050, 85610, 84930, 83880, 84410, 84250], {
        color: 'var(--icon-color-btc)',
        valuePrefix: '$',
        strokeWidth: 2
    });
}
