// Charts for the 2026-11-20 report. Bilingual: the page passes the current language.
function initializeAllVisuals_report(language) {
    const lang = language || window.languageManager?.currentLanguage || 'vi';
    const sfx = lang === 'en' ? '-en' : '';
    const t = (vi, en) => (lang === 'en' ? en : vi);
    const get = (id) => {
        const el = document.getElementById(id + sfx);
        if (el) el.innerHTML = '';
        return el;
    };

    const fng = get('fng-gauge-container');
    if (fng) {
        createGauge(fng, 44, {
            min: 0,
            max: 100,
            segments: [
                { limit: 25, color: 'var(--fng-extreme-fear-color)', label: t('Sợ hãi tột độ', 'Extreme Fear') },
                { limit: 45, color: 'var(--fng-fear-color)', label: t('Sợ hãi', 'Fear') },
                { limit: 55, color: 'var(--fng-neutral-color)', label: t('Trung lập', 'Neutral') },
                { limit: 75, color: 'var(--fng-greed-color)', label: t('Tham lam', 'Greed') },
                { limit: 100, color: 'var(--fng-extreme-greed-color)', label: t('Tham lam tột độ', 'Extreme Greed') }
            ]
        });
    }

    const etf = get('etf-flow-bar-container');
    if (etf) {
        const flows = [
            ['12/11', 'Nov 12', -523],
            ['13/11', 'Nov 13', -291],
            ['16/11', 'Nov 16', -418],
            ['17/11', 'Nov 17', 96],
            ['18/11', 'Nov 18', 274],
            ['19/11', 'Nov 19', 351]
        ];
        createBarChart(etf, flows.map(([vi, en, value]) => ({
            value,
            label: t(vi, en),
            color: value < 0 ? 'var(--negative-color)' : 'var(--positive-color)'
        })), {
            valuePrefix: '$',
            valueSuffix: 'M',
            yAxisLabel: t('Triệu USD', 'USD million')
        });
    }

    const rsi = get('rsi-gauge-container');
    if (rsi) {
        createGauge(rsi, 51, {
            min: 0,
            max: 100,
            segments: [
                { limit: 30, color: 'var(--rsi-oversold-color)', label: t('Quá bán', 'Oversold') },
                { limit: 70, color: 'var(--rsi-neutral-color)', label: t('Trung tính', 'Neutral') },
                { limit: 100, color: 'var(--rsi-overbought-color)', label: t('Quá mua', 'Overbought') }
            ]
        });
    }

    const dominance = get('btc-dominance-line-container');
    if (dominance) {
        createLineChart(dominance, [58.1, 58.3, 58.6, 58.5, 58.2, 58.3, 58.4], {
            color: 'var(--icon-color-btc)',
            valueSuffix: '%',
            strokeWidth: 2
        });
    }

    const supply = get('eth-supply-doughnut-container');
    if (supply) {
        // The legend is written in the HTML next to the chart.
        createDoughnutChart(supply, [
            { value: 29, label: t('Đang staking', 'Staked'), color: 'var(--icon-color-eth)' },
            { value: 11, label: 'DeFi', color: 'var(--dark-orange-color)' },
            { value: 9, label: t('Trên sàn', 'On exchanges'), color: 'var(--steel-blue-color)' },
            { value: 51, label: t('Khác', 'Other'), color: 'var(--slate-gray-color)' }
        ], {
            title: t('Nguồn cung ETH', 'ETH supply'),
            outerRadius: 90,
            innerRadius: 60,
            showLegend: false
        });
    }
}
