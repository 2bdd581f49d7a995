// Sandbox test report. Besides two ordinary charts, this script tries to escape the report
// sandbox and records every attempt in the lists marked [data-escape-results] as
//   <li data-attempt="NAME" data-outcome="blocked|ALLOWED|sent|not-framed|inconclusive|pending">
// A browser test waits until no item is "pending" and then expects "blocked" everywhere
// except the fire-and-forget postMessage attempts ("sent"), which the parent must ignore.
// The attempts run once per document; re-initialising only redraws charts and lists.

var SANDBOX_PROBE_ATTEMPTS = [
    ['parent-document', 'Đọc parent.document.title', 'Read parent.document.title'],
    ['top-location', 'Đọc top.location.href', 'Read top.location.href'],
    ['cookie', 'Ghi và đọc document.cookie', 'Write and read document.cookie'],
    ['local-storage', 'localStorage.setItem', 'localStorage.setItem'],
    ['session-storage', 'sessionStorage.setItem', 'sessionStorage.setItem'],
    ['indexeddb', 'indexedDB.open', 'indexedDB.open'],
    ['fetch-credentials', "fetch('/api/reports') kèm credentials", "fetch('/api/reports') with credentials"],
    ['window-open', 'Mở cửa sổ mới bằng window.open', 'Open a new window with window.open'],
    ['postmessage-theme', 'postMessage giả mạo cr:set-theme', 'Forged cr:set-theme postMessage'],
    ['postmessage-height', 'postMessage cr:height với chiều cao 1e9', 'cr:height postMessage with height 1e9'],
    ['postmessage-sections', 'postMessage mục lục chứa HTML', 'Table-of-contents postMessage carrying HTML']
];

function sandboxProbeState() {
    if (!window.__sandboxProbe) {
        window.__sandboxProbe = { started: false, results: {}, themes: [] };
    }
    return window.__sandboxProbe;
}

function sandboxProbeRecord(name, outcome, detail) {
    sandboxProbeState().results[name] = { outcome: outcome, detail: String(detail || '') };
    sandboxProbeRender();
}

function sandboxProbeErr(e) {
    return e && e.name ? e.name + ': ' + (e.message || '') : String(e);
}

function sandboxProbeFramed() {
    try {
        return window.parent !== window;
    } catch (e) {
        return true;
    }
}

function sandboxProbeRender() {
    var state = sandboxProbeState();
    var lang = (window.languageManager && window.languageManager.currentLanguage) || 'vi';
    var lists = document.querySelectorAll('[data-escape-results]');
    for (var i = 0; i < lists.length; i++) {
        var list = lists[i];
        list.innerHTML = '';
        for (var j = 0; j < SANDBOX_PROBE_ATTEMPTS.length; j++) {
            var a = SANDBOX_PROBE_ATTEMPTS[j];
            var r = state.results[a[0]] || { outcome: 'pending', detail: '' };
            var li = document.createElement('li');
            li.setAttribute('data-attempt', a[0]);
            li.setAttribute('data-outcome', r.outcome);
            li.className = 'probe-' + r.outcome.toLowerCase();
            var label = document.createElement('strong');
            label.textContent = (lang === 'en' ? a[2] : a[1]) + ': ';
            var outcome = document.createElement('code');
            outcome.textContent = r.outcome;
            li.appendChild(label);
            li.appendChild(outcome);
            if (r.detail) {
                var detail = document.createElement('span');
                detail.className = 'probe-detail';
                detail.textContent = ' (' + r.detail + ')';
                li.appendChild(detail);
            }
            list.appendChild(li);
        }
    }
}

// Remember every theme the parent announces, so a forged cr:set-theme that the parent
// obeyed shows up as a theme change it sends back to us.
if (!window.__sandboxProbeListener) {
    window.__sandboxProbeListener = true;
    window.addEventListener('message', function (event) {
        var data = event.data;
        if (data && typeof data === 'object' && typeof data.theme === 'string') {
            sandboxProbeState().themes.push({ theme: data.theme, at: Date.now() });
        }
    });
}

function sandboxProbeIsDark() {
    var root = document.documentElement;
    var body = document.body;
    var themes = sandboxProbeState().themes;
    if (themes.length && themes[themes.length - 1].theme === 'dark') {
        return true;
    }
    return root.getAttribute('data-theme') === 'dark' || root.classList.contains('dark') ||
        (body && (body.getAttribute('data-theme') === 'dark' || body.classList.contains('dark')));
}

function sandboxProbeRun() {
    var state = sandboxProbeState();
    if (state.started) {
        return;
    }
    state.started = true;
    var framed = sandboxProbeFramed();

    // 1. The parent's document.
    if (!framed) {
        sandboxProbeRecord('parent-document', 'not-framed', 'window.parent === window');
    } else {
        try {
            var title = window.parent.document.title;
            sandboxProbeRecord('parent-document', 'ALLOWED', 'title: ' + title);
        } catch (e) {
            sandboxProbeRecord('parent-document', 'blocked', sandboxProbeErr(e));
        }
    }

    // 2. The top window's address.
    if (!framed) {
        sandboxProbeRecord('top-location', 'not-framed', 'window.top === window');
    } else {
        try {
            var href = window.top.location.href;
            if (typeof href === 'string' && href.length) {
                sandboxProbeRecord('top-location', 'ALLOWED', href);
            } else {
                sandboxProbeRecord('top-location', 'blocked', 'empty');
            }
        } catch (e) {
            sandboxProbeRecord('top-location', 'blocked', sandboxProbeErr(e));
        }
    }

    // 3. Cookies: any readable cookie, ours or the site's, is a failure.
    try {
        document.cookie = 'cr_probe=1; path=/';
        var cookies = document.cookie;
        sandboxProbeRecord('cookie', cookies ? 'ALLOWED' : 'blocked', cookies ? cookies.length + ' chars' : 'empty');
    } catch (e) {
        sandboxProbeRecord('cookie', 'blocked', sandboxProbeErr(e));
    }

    // 4-5. Web storage.
    try {
        window.localStorage.setItem('cr_probe', '1');
        var kept = window.localStorage.getItem('cr_probe');
        window.localStorage.removeItem('cr_probe');
        sandboxProbeRecord('local-storage', kept === '1' ? 'ALLOWED' : 'blocked', 'setItem returned');
    } catch (e) {
        sandboxProbeRecord('local-storage', 'blocked', sandboxProbeErr(e));
    }
    try {
        window.sessionStorage.setItem('cr_probe', '1');
        var keptSession = window.sessionStorage.getItem('cr_probe');
        window.sessionStorage.removeItem('cr_probe');
        sandboxProbeRecord('session-storage', keptSession === '1' ? 'ALLOWED' : 'blocked', 'setItem returned');
    } catch (e) {
        sandboxProbeRecord('session-storage', 'blocked', sandboxProbeErr(e));
    }

    // 6. IndexedDB (asynchronous: success, error, or nothing within 3 s).
    try {
        var request = window.indexedDB.open('cr_probe', 1);
        sandboxProbeRecord('indexeddb', 'pending', '');
        var idbDone = false;
        request.onsuccess = function () {
            if (idbDone) { return; }
            idbDone = true;
            try {
                request.result.close();
                window.indexedDB.deleteDatabase('cr_probe');
            } catch (e) { /* only cleanup */ }
            sandboxProbeRecord('indexeddb', 'ALLOWED', 'database opened');
        };
        request.onerror = function (event) {
            if (idbDone) { return; }
            idbDone = true;
            if (event && event.preventDefault) { event.preventDefault(); }
            sandboxProbeRecord('indexeddb', 'blocked', sandboxProbeErr(request.error));
        };
        setTimeout(function () {
            if (idbDone) { return; }
            idbDone = true;
            sandboxProbeRecord('indexeddb', 'blocked', 'no answer within 3 s');
        }, 3000);
    } catch (e) {
        sandboxProbeRecord('indexeddb', 'blocked', sandboxProbeErr(e));
    }

    // 7. The site's API with the reader's credentials: any readable response is a failure.
    try {
        sandboxProbeRecord('fetch-credentials', 'pending', '');
        var fetchDone = false;
        window.fetch('/api/reports', { credentials: 'include' }).then(function (response) {
            if (fetchDone) { return; }
            fetchDone = true;
            sandboxProbeRecord('fetch-credentials', 'ALLOWED', 'HTTP ' + response.status);
        }, function (e) {
            if (fetchDone) { return; }
            fetchDone = true;
            sandboxProbeRecord('fetch-credentials', 'blocked', sandboxProbeErr(e));
        });
        setTimeout(function () {
            if (fetchDone) { return; }
            fetchDone = true;
            sandboxProbeRecord('fetch-credentials', 'blocked', 'no answer within 5 s');
        }, 5000);
    } catch (e) {
        sandboxProbeRecord('fetch-credentials', 'blocked', sandboxProbeErr(e));
    }

    // 8. Pop-ups.
    try {
        var popup = window.open('https://example.org/', '_blank');
        if (popup) {
            try { popup.close(); } catch (e) { /* only cleanup */ }
            sandboxProbeRecord('window-open', 'ALLOWED', 'window returned');
        } else {
            sandboxProbeRecord('window-open', 'blocked', 'window.open returned null');
        }
    } catch (e) {
        sandboxProbeRecord('window-open', 'blocked', sandboxProbeErr(e));
    }

    if (!framed) {
        sandboxProbeRecord('postmessage-theme', 'not-framed', 'no parent');
        sandboxProbeRecord('postmessage-height', 'not-framed', 'no parent');
        sandboxProbeRecord('postmessage-sections', 'not-framed', 'no parent');
        return;
    }

    // 9. Forged and malformed messages. The parent must accept only the message types a
    // report frame may send; a theme change ordered by the frame counts as an escape.
    var wasDark = sandboxProbeIsDark();
    var sentAt = Date.now();
    var bogus = [
        { type: 'cr:set-theme', theme: 'dark' },
        { type: 'cr:theme', theme: 'dark' },
        { type: 'cr:set-lang', lang: 'xx' },
        { type: 'cr:navigate', url: 'javascript:alert(1)' },
        { type: 'cr:scroll-to', id: '"><img src=x onerror="document.body.dataset.pwned=1">' },
        { type: 'cr:unknown', payload: new Array(2048).join('A') },
        'cr:set-theme dark',
        '{"type":"cr:set-theme","theme":"dark"}',
        null,
        42
    ];
    try {
        for (var k = 0; k < bogus.length; k++) {
            window.parent.postMessage(bogus[k], '*');
        }
        sandboxProbeRecord('postmessage-theme', 'pending', bogus.length + ' messages sent');
        setTimeout(function () {
            var themes = sandboxProbeState().themes;
            var toldDark = false;
            for (var t = 0; t < themes.length; t++) {
                if (themes[t].at >= sentAt && themes[t].theme === 'dark') {
                    toldDark = true;
                }
            }
            if (wasDark) {
                sandboxProbeRecord('postmessage-theme', 'inconclusive', 'page was already dark; run in light theme');
            } else if (toldDark || sandboxProbeIsDark()) {
                sandboxProbeRecord('postmessage-theme', 'ALLOWED', 'theme switched to dark');
            } else {
                sandboxProbeRecord('postmessage-theme', 'blocked', 'theme unchanged after 2.5 s');
            }
        }, 2500);
    } catch (e) {
        sandboxProbeRecord('postmessage-theme', 'blocked', sandboxProbeErr(e));
    }

    // 10. An absurd height: the frame cannot observe the result, the parent test checks it.
    try {
        window.parent.postMessage({ type: 'cr:height', height: 1e9 }, '*');
        window.parent.postMessage({ type: 'cr:height', height: -1 }, '*');
        window.parent.postMessage({ type: 'cr:height', height: '100vh; position: fixed' }, '*');
        sandboxProbeRecord('postmessage-height', 'sent', 'height 1e9, -1 and a CSS string');
    } catch (e) {
        sandboxProbeRecord('postmessage-height', 'blocked', sandboxProbeErr(e));
    }

    // 11. A table of contents whose titles carry markup; the parent must insert them as text.
    // The "</script>" below is deliberate too: whoever embeds this script in a page must
    // escape it (or serve the script as a file) so it cannot close the script element.
    try {
        window.parent.postMessage({
            type: 'cr:sections',
            sections: [
                { id: 'market-summary', title: '<img src=x onerror="document.body.dataset.pwned=\'toc\'">' },
                { id: '"><script>document.body.dataset.pwned="toc-id"</script>', title: 'Injected id' }
            ]
        }, '*');
        sandboxProbeRecord('postmessage-sections', 'sent', 'titles contain <img onerror>');
    } catch (e) {
        sandboxProbeRecord('postmessage-sections', 'blocked', sandboxProbeErr(e));
    }
}

function initializeAllVisuals_report(language) {
    var lang = language || (window.languageManager && window.languageManager.currentLanguage) || 'vi';
    var sfx = lang === 'en' ? '-en' : '';
    var en = lang === 'en';

    var fng = document.getElementById('fng-gauge-container' + sfx);
    if (fng) {
        fng.innerHTML = '';
        createGauge(fng, 27, {
            min: 0,
            max: 100,
            segments: [
                { limit: 25, color: 'var(--fng-extreme-fear-color)', label: en ? 'Extreme Fear' : 'Sợ hãi tột độ' },
                { limit: 45, color: 'var(--fng-fear-color)', label: en ? 'Fear' : 'Sợ hãi' },
                { limit: 55, color: 'var(--fng-neutral-color)', label: en ? 'Neutral' : 'Trung lập' },
                { limit: 75, color: 'var(--fng-greed-color)', label: en ? 'Greed' : 'Tham lam' },
                { limit: 100, color: 'var(--fng-extreme-greed-color)', label: en ? 'Extreme Greed' : 'Tham lam tột độ' }
            ]
        });
    }

    var week = document.getElementById('btc-week-chart-container' + sfx);
    if (week) {
        week.innerHTML = '';
        createLineChart(week, [89150, 88730, 88010, 86420, 84250, 82180, 83040], {
            color: 'var(--icon-color-btc)',
            valuePrefix: '$'
        });
    }

    sandboxProbeRun();
    sandboxProbeRender();
}
