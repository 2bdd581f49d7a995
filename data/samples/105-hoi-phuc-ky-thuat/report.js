// Charts for the 2026-11-18 report (bilingual).
function initializeAllVisuals_report(language) {
    var lang = language || (window.languageManager && window.languageManager.currentLanguage) || 'vi';
    var sfx = lang === 'en' ? '-en' : '';
    var isEn = lang === 'en';

    function box(id) {
        var el = document.getElementById(id + sfx);
        if (el) {
            el.innerHTML = '';
        }
        return el;
    }

    // Closing prices exported from the data sheet as formatted strings ("84,250").
    var btcCloses = ['88,730', '88,010', '86,420', '84,250', '82,180', '83,040', '85,310'];
    var ethCloses = ['3,190', '3,161', '3,085', '2,996', '2,903', '2,951', '3,044'];
    function toNumbers(list) {
        return list.map(function (v) {
            return Number(String(v).replace(/,/g, ''));
        });
    }

    var fng = box('fng-gauge-container');
    if (fng) {
        createGauge(fng, 34, {
            min: 0,
            max: 100,
            segments: [
                { limit: 25, color: 'var(--fng-extreme-fear-color)', label: isEn ? 'Extreme Fear' : 'Sợ hãi tột độ' },
                { limit: 45, color: 'var(--fng-fear-color)', label: isEn ? 'Fear' : 'Sợ hãi' },
                { limit: 55, color: 'var(--fng-neutral-color)', label: isEn ? 'Neutral' : 'Trung lập' },
                { limit: 75, color: 'var(--fng-greed-color)', label: isEn ? 'Greed' : 'Tham lam' },
                { limit: 100, color: 'var(--fng-extreme-greed-color)', label: isEn ? 'Extreme Greed' : 'Tham lam tột độ' }
            ]
        });
    }

    var btc = box('btc-price-chart-container');
    if (btc) {
        createLineChart(btc, toNumbers(btcCloses), {
            color: 'var(--icon-color-btc)',
            valuePrefix: '$',
            strokeWidth: 2.5
        });
    }

    var eth = box('eth-price-chart-container');
    if (eth) {
        createLineChart(eth, toNumbers(ethCloses), {
            color: 'var(--icon-color-eth)',
            valuePrefix: '$',
            strokeWidth: 3
        });
    }

    var funding = box('funding-bar-container');
    if (funding) {
        var rates = [
            ['Binance', 0.0042],
            ['Bybit', -0.0018],
            ['OKX', 0.0031],
            ['Bitget', -0.0025],
            ['Deribit', 0.0009]
        ];
        createBarChart(funding, rates.map(function (r) {
            return {
                value: r[1],
                label: r[0],
                color: r[1] < 0 ? 'var(--negative-color)' : 'var(--positive-color)'
            };
        }), {
            valueSuffix: '%',
            yAxisLabel: isEn ? 'Funding rate (%)' : 'Tỷ lệ funding (%)'
        });
    }
}
