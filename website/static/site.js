// The site's only script: no framework, no inline code (the CSP allows none).
// Every word it shows is in the page (data- attributes and hidden elements).

// Say so plainly when the video cannot be reached (store down, link expired).
(function () {
  var player = document.getElementById("player");
  if (!player) { return; }
  player.addEventListener("error", function () {
    var message = document.querySelector(".video-error");
    if (message) { message.hidden = false; }
  });
})();

// Share: the phone's own share sheet where there is one, else copy the link, else show it.
(function () {
  var button = document.querySelector("button.share");
  if (!button) { return; }
  var url = button.getAttribute("data-url");
  var copied = document.querySelector(".copied");
  var fallback = document.querySelector(".copy-link");

  function showLink() {
    if (!fallback) { return; }
    fallback.hidden = false;
    var field = fallback.querySelector("input");
    field.focus();
    field.select();
  }

  function copy() {
    if (!navigator.clipboard || !window.isSecureContext) { showLink(); return; }
    navigator.clipboard.writeText(url).then(function () {
      if (copied) { copied.hidden = false; }
    }, showLink);
  }

  button.hidden = false;
  button.addEventListener("click", function () {
    var data = {title: button.getAttribute("data-title"),
                text: button.getAttribute("data-text"), url: url};
    if (navigator.share && (!navigator.canShare || navigator.canShare(data))) {
      navigator.share(data).catch(function (error) {
        if (error && error.name !== "AbortError") { copy(); }  // AbortError: they changed their mind
      });
    } else {
      copy();
    }
  });
})();

// "Being made": ask /api/code/<code> every few seconds, then ever less often (with some
// jitter, so a hall full of phones does not ask in step), for a day at most; honour a
// server's Retry-After; check at once when the phone is back online or the page is looked
// at again. When the movie is here, go to it (replacing this page in the history).
(function () {
  var box = document.getElementById("waiting");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-poll");
  var delay = parseFloat(box.getAttribute("data-first")) || 3;
  var longest = parseFloat(box.getAttribute("data-longest")) || 300;
  var until = Date.now() + (parseFloat(box.getAttribute("data-for")) || 86400) * 1000;
  var timer = null;
  var busy = false;
  var asked = 0;  // when the last check started
  // The family's key (#k=..., from the QR code): out of the address at once, kept in this
  // tab until the movie is here, then handed to the movie page the same way.
  var slot = "stopmo-pending-" + url;
  var found = /(?:^#|&)k=([A-Za-z0-9_-]{22})(?:&|$)/.exec(window.location.hash);
  try {
    if (found) { window.sessionStorage.setItem(slot, found[1]); }
  } catch (error) { /* private browsing: the address keeps it */ }
  if (found && window.history.replaceState) {
    try {
      if (window.sessionStorage.getItem(slot) === found[1]) {
        window.history.replaceState(null, "", window.location.pathname + window.location.search);
      }
    } catch (error) { /* kept in the address */ }
  }
  function ownerHash() {
    var kept = null;
    try { kept = window.sessionStorage.getItem(slot); } catch (error) { kept = null; }
    if (kept) { return "#k=" + kept; }
    return found ? "#k=" + found[1] : "";
  }

  function show(state) {
    var states = box.querySelectorAll(".state");
    for (var i = 0; i < states.length; i++) {
      states[i].hidden = states[i].getAttribute("data-state") !== state;
    }
  }

  function schedule(seconds) {
    clearTimeout(timer);
    var wait = seconds * 1000 * (0.8 + Math.random() * 0.4);
    if (Date.now() + wait > until) { timer = null; show("gave-up"); return; }
    timer = setTimeout(check, wait);
  }

  function later(retryAfter) {
    var next = Math.max(delay, retryAfter || 0);
    delay = Math.min(longest, delay * 1.5);
    schedule(next);
  }

  function check() {
    if (busy) { return; }
    busy = true;
    asked = Date.now();
    clearTimeout(timer);
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "omit"})
      .then(function (response) {
        if (!response.ok) {  // 429 or 503 in a rush: wait as long as the server asks
          var asked = parseFloat(response.headers.get("Retry-After"));
          throw {retryAfter: isNaN(asked) ? 0 : asked};
        }
        return response.json();
      })
      .then(function (doc) {
        busy = false;
        if (doc.status === "ready" && /^\/[^\/]/.test(doc.url)) {  // a page of this site
          show("ready");
          var hash = ownerHash();
          try { window.sessionStorage.removeItem(slot); } catch (error) { /* nothing kept */ }
          window.location.replace(doc.url + hash);  // the owner key, if any
          return;
        }
        show("waiting");
        later();
      })
      .catch(function (error) {
        busy = false;
        if (navigator.onLine === false) { show("offline"); }
        later(error && error.retryAfter);
      });
  }

  function checkSoon() {  // not given up, and not asked in the last few seconds
    if (timer !== null && Date.now() - asked > 5000) { check(); }
  }

  window.addEventListener("online", function () { show("waiting"); checkSoon(); });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { checkSoon(); }
  });
  schedule(delay);
})();

// The family's own link: the station's QR code carries the owner key in the fragment
// (#k=..., never sent to a server). Keep it on this phone, take it out of the address
// (so a shared address never carries it), and offer to name or remove the movie.
(function () {
  var panel = document.getElementById("owner");
  if (!panel || !window.fetch || !window.JSON) { return; }
  var slot = "stopmo-owner-" + panel.getAttribute("data-movie");
  var found = /(?:^#|&)k=([A-Za-z0-9_-]{22})(?:&|$)/.exec(window.location.hash);
  var key = found ? found[1] : null;
  try {
    if (key) { window.localStorage.setItem(slot, key); } else { key = window.localStorage.getItem(slot); }
  } catch (error) { /* private browsing: the key lives as long as this page */ }
  if (found && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  if (!key) { return; }
  panel.hidden = false;
  var form = panel.querySelector("form.owner-name");
  var field = panel.querySelector("#owner-title");
  var confirm = panel.querySelector(".owner-confirm");
  var removeButton = panel.querySelector("button.remove");

  function say(what) {
    var words = panel.querySelectorAll("[data-say]");
    for (var i = 0; i < words.length; i++) {
      words[i].hidden = words[i].getAttribute("data-say") !== what;
    }
  }

  function send(url, body, done) {
    body.key = key;
    fetch(url, {method: "POST", credentials: "omit", body: JSON.stringify(body),
                headers: {"Content-Type": "application/json", "Accept": "application/json"}})
      .then(function (response) {
        return response.json().then(function (doc) { return {status: response.status, doc: doc}; });
      })
      .then(function (answer) {
        if (answer.status === 200) { done(answer.doc); return; }
        say(answer.status === 403 ? "refused" : answer.status === 429 ? "busy" : "failed");
      })
      .catch(function () { say("failed"); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send(panel.getAttribute("data-name-url"), {title: field.value}, function (doc) {
      var heading = document.querySelector(".movie h1");
      if (doc.title && heading) { heading.textContent = doc.title; }
      if (!doc.title && heading) { heading.textContent = heading.getAttribute("data-untitled"); }
      field.value = doc.title || "";
      say(doc.title ? "saved" : "cleared");
    });
  });
  removeButton.addEventListener("click", function () {
    confirm.hidden = false;
    removeButton.hidden = true;
  });
  panel.querySelector("button.remove-no").addEventListener("click", function () {
    confirm.hidden = true;
    removeButton.hidden = false;
  });
  panel.querySelector("button.remove-yes").addEventListener("click", function () {
    send(panel.getAttribute("data-remove-url"), {}, function () {
      try { window.localStorage.removeItem(slot); } catch (error) { /* nothing kept */ }
      var gone = document.querySelectorAll("#player, .actions, .copy-link, .copied, .owner-name, .owner-remove, .owner-confirm, .owner-note");
      for (var i = 0; i < gone.length; i++) { gone[i].hidden = true; }
      var player = document.getElementById("player");
      if (player) { player.pause(); player.removeAttribute("src"); player.load(); }
      say("removed");
    });
  });
})();
