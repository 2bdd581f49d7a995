/*
 * Báo cáo ngày 21/11/2026 – biểu đồ song ngữ.
 * The page calls initializeAllVisuals_report(lang) on load and after every language switch,
 * so every chart clears its container before drawing. English containers carry "-en".
 */
function initializeAllVisuals_report(language) {
    const lang = language || (window.languageManager && window.languageManager.currentLanguage) || 'vi';
    const en = lang === 'en';
    const sfx = en ? '-en' : '';
    const t = (vi, eng) => (en ? eng : vi);

    // ---- Data (frozen at 07:30 UTC, 2026-11-21) -------------------------------------------
    const data = {
        fng: 52,
        rsi: 57,
        fngHistory: [38, 31, 22, 27, 34, 37, 44, 52],
        btcCloses: [
            84900, 85600, 86300, 85800, 87200, 88400, 87900, 89100, 90300, 89700,
            90800, 92100, 91400, 90200, 90900, 89600, 89940, 91220, 90480, 89150,
            88730, 88010, 86420, 84250, 82180, 83040, 85310, 86580, 87960, 89470
        ],
        ethCloses: [
            2980, 3010, 3055, 3020, 3090, 3140, 3115, 3180, 3240, 3215,
            3260, 3320, 3285, 3230, 3255, 3205, 3220, 3268, 3236, 3205,
            3190, 3161, 3085, 2996, 2903, 2951, 3044, 3092, 3138, 3215
        ],
        btcDominance: [58.3, 58.6, 58.5, 58.2, 58.3, 58.4, 58.2],
        marketCap: [
            { key: 'btc', label: 'Bitcoin', value: 58.2 },
            { key: 'eth', label: 'Ethereum', value: 12.6 },
            { key: 'usdt', label: 'Tether', value: 6.1 },
            { key: 'xrp', label: 'XRP', value: 4.5 },
            { key: 'bnb', label: 'BNB', value: 4.0 },
            { key: 'sol', label: 'Solana', value: 2.8 },
            { key: 'usdc', label: 'USDC', value: 2.5 },
            { key: null, label: t('Khác', 'Others'), value: 9.3 }
        ],
        // Net exchange flows in BTC; negative = withdrawn from exchanges.
        netflow: [
            ['15/11', 'Nov 15', 6200],
            ['16/11', 'Nov 16', 11800],
            ['17/11', 'Nov 17', -2400],
            ['18/11', 'Nov 18', -8900],
            ['19/11', 'Nov 19', -5100],
            ['20/11', 'Nov 20', -7600],
            ['21/11', 'Nov 21', -4300]
        ],
        sectors: [
            ['RWA', 'RWA', 7.5],
            ['DeFi', 'DeFi', 6.3],
            ['Layer 1', 'Layer 1', 4.8],
            ['Meme', 'Meme', 3.9],
            ['Layer 2', 'Layer 2', 2.1],
            ['AI', 'AI', -1.7],
            ['GameFi', 'GameFi', -4.2]
        ],
        experts: [
            { label: t('Lạc quan', 'Bullish'), value: 9, color: 'var(--positive-color)' },
            { label: t('Trung lập', 'Neutral'), value: 11, color: 'var(--neutral-color)' },
            { label: t('Thận trọng', 'Cautious'), value: 4, color: 'var(--negative-color)' }
        ],
        allocation: [
            { label: 'Bitcoin (BTC)', value: 55, color: 'var(--icon-color-btc)' },
            { label: 'Ethereum (ETH)', value: 25, color: 'var(--icon-color-eth)' },
            { label: t('Altcoin vốn hóa lớn', 'Large-cap altcoins'), value: 10, color: 'var(--royal-blue-color)' },
            { label: 'Stablecoin', value: 10, color: 'var(--icon-color-usdc)' }
        ]
    };

    const fngSegments = [
        { limit: 25, color: 'var(--fng-extreme-fear-color)', label: t('Sợ hãi tột độ', 'Extreme Fear') },
        { limit: 45, color: 'var(--fng-fear-color)', label: t('Sợ hãi', 'Fear') },
        { limit: 55, color: 'var(--fng-neutral-color)', label: t('Trung lập', 'Neutral') },
        { limit: 75, color: 'var(--fng-greed-color)', label: t('Tham lam', 'Greed') },
        { limit: 100, color: 'var(--fng-extreme-greed-color)', label: t('Tham lam tột độ', 'Extreme Greed') }
    ];
    const rsiSegments = [
        { limit: 30, color: 'var(--rsi-oversold-color)', label: t('Quá bán', 'Oversold') },
        { limit: 70, color: 'var(--rsi-neutral-color)', label: t('Trung tính', 'Neutral') },
        { limit: 100, color: 'var(--rsi-overbought-color)', label: t('Quá mua', 'Overbought') }
    ];
    const signColor = (v) => (v < 0 ? 'var(--negative-color)' : 'var(--positive-color)');

    // Draws one chart; a failure in one chart must not stop the others.
    function draw(baseId, paint) {
        const el = document.getElementById(baseId + sfx);
        if (!el) {
            return;
        }
        el.innerHTML = '';
        try {
            paint(el);
        } catch (err) {
            console.error('[report] chart ' + baseId + sfx + ' failed:', err);
            el.textContent = t('Không thể hiển thị biểu đồ.', 'Chart unavailable.');
        }
    }

    // ---- Market summary ----------------------------------------------------------------------
    draw('fng-gauge-container', (el) =>
        createGauge(el, data.fng, { min: 0, max: 100, segments: fngSegments }));

    draw('market-cap-doughnut-container', (el) =>
        createDoughnutChart(el, data.marketCap.map((c) => ({
            value: c.value,
            label: c.label,
            color: c.key ? 'var(--icon-color-' + c.key + ')' : 'var(--slate-gray-color)'
        })), {
            title: t('Thị phần vốn hóa', 'Market share'),
            outerRadius: 90,
            innerRadius: 55,
            showLegend: true
        }));

    draw('fng-history-line-container', (el) =>
        createLineChart(el, data.fngHistory, {
            color: 'var(--accent-color)',
            strokeWidth: 2
        }));

    // ---- Bitcoin ------------------------------------------------------------------------------
    draw('btc-price-line-container', (el) =>
        createLineChart(el, data.btcCloses, {
            color: 'var(--icon-color-btc)',
            valuePrefix: '$',
            strokeWidth: 2.5
        }));

    draw('rsi-gauge-container', (el) =>
        createGauge(el, data.rsi, { min: 0, max: 100, segments: rsiSegments }));

    // ---- Ethereum -----------------------------------------------------------------------------
    draw('eth-price-line-container', (el) =>
        createLineChart(el, data.ethCloses, {
            color: 'var(--icon-color-eth)',
            valuePrefix: '$',
            strokeWidth: 2
        }));

    // ---- On-chain -----------------------------------------------------------------------------
    draw('exchange-netflow-bar-container', (el) =>
        createBarChart(el, data.netflow.map(([vi, eng, value]) => ({
            value,
            label: t(vi, eng),
            // Inflows to exchanges are the bearish side here, so the colours are inverted.
            color: value > 0 ? 'var(--negative-color)' : 'var(--positive-color)'
        })), {
            valueSuffix: ' BTC',
            yAxisLabel: t('BTC ròng', 'Net BTC')
        }));

    // ---- Market activity ----------------------------------------------------------------------
    draw('sector-bar-container', (el) =>
        createBarChart(el, data.sectors.map(([vi, eng, value]) => ({
            value,
            label: t(vi, eng),
            color: signColor(value)
        })), {
            valueSuffix: '%',
            yAxisLabel: t('Thay đổi 7 ngày (%)', '7-day change (%)')
        }));

    draw('dominance-line-container', (el) =>
        createLineChart(el, data.btcDominance, {
            color: 'var(--steel-blue-color)',
            valueSuffix: '%',
            strokeWidth: 3
        }));

    // ---- Expert and investment outlook --------------------------------------------------------
    draw('expert-sentiment-doughnut-container', (el) =>
        createDoughnutChart(el, data.experts, {
            title: t('24 báo cáo', '24 reports'),
            outerRadius: 80,
            innerRadius: 50,
            showLegend: true
        }));

    draw('allocation-doughnut-container', (el) =>
        createDoughnutChart(el, data.allocation, {
            title: t('Danh mục cân bằng', 'Balanced portfolio'),
            outerRadius: 100,
            innerRadius: 65,
            showLegend: true
        }));
}
