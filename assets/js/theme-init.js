// Runs in <head> before the first paint, so the page never flashes the wrong theme; also
// marks the page as scripted, so CSS can keep room for what the scripts will draw.
(function () {
  'use strict';
  document.documentElement.classList.add('js');
  var theme = null;
  try {
    theme = window.localStorage.getItem('theme');
  } catch (e) {
    theme = null;
  }
  if (theme !== 'light' && theme !== 'dark') {
    theme = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  }
  document.documentElement.setAttribute('data-theme', theme);
})();
