// Progressive enhancement for the console: every page works without this file.
// It fills the browser's time zone into the sign-in form and keeps send progress live over Server-Sent Events.
(function () {
  'use strict';
  var zone = document.querySelector('[data-browser-zone]');
  if (zone && window.Intl) {
    try { zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { /* older browsers: the server keeps UTC */ }
  }

  var live = document.querySelector('[data-live]');
  if (!live || !window.EventSource) return;
  var source = new EventSource(live.getAttribute('data-live'));
  var statuses = {};
  source.onmessage = function (event) {
    var data = JSON.parse(event.data);
    (data.sends || []).forEach(update);
  };

  function update(send) {
    var before = statuses[send.id];
    statuses[send.id] = send.status;
    // A send that finished, paused or started (a schedule fired) changes which buttons make sense: show the page afresh.
    if (before && before !== send.status && live.hasAttribute('data-reload-on-change')) { window.location.reload(); return; }
    var box = document.querySelector('[data-send="' + send.id + '"]');
    // A send that started after the page was drawn: draw the page again to show it.
    if (!box) { if (live.hasAttribute('data-reload-on-new')) window.location.reload(); return; }
    var bar = box.querySelector('progress');
    if (bar) { bar.max = Math.max(send.total, 1); bar.value = send.done; bar.textContent = send.percent + '%'; }
    set(box, 'percent', send.percent + '%');
    set(box, 'done', send.done.toLocaleString('en'));
    set(box, 'total', send.total.toLocaleString('en'));
    ['sent', 'failed', 'bounced', 'skipped', 'queued', 'unsubscribes', 'complaints'].forEach(function (key) { set(box, key, send[key].toLocaleString('en')); });
    set(box, 'rate', send.rate);
    set(box, 'eta', send.eta);
    set(box, 'status', send.status);
    var badge = box.querySelector('[data-field="status"]');
    if (badge) badge.className = 'badge ' + send.status;
    set(box, 'problem', send.problem || '');
  }

  function set(box, name, text) {
    var el = box.querySelector('[data-field="' + name + '"]');
    if (el && el.textContent !== text) el.textContent = text;
  }
})();
