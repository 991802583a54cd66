// GenHRL Portal: the training pages' small behaviours (dialogs, live-view fallback, log scrolling,
// the configuration form's backend defaults, "Train selected"). Each page also works without it:
// every dialog URL is a page, every action a form.
"use strict";

(function () {
  const MODAL_ROOT = "modal-root";
  const POLL_MS = 3000;
  // Recent SSE events of this page, for people debugging and for the browser tests.
  window.genhrlSse = window.genhrlSse || [];

  // htmx swaps 2xx only by default; the configuration form answers 422 (bad values) and 409
  // (already training) with a form to show, so those are swapped too.
  htmx.config.responseHandling.unshift({ code: "409|422", swap: true, error: false });

  // ---- dialogs -------------------------------------------------------------------------------
  function modalRoot() {
    return document.getElementById(MODAL_ROOT);
  }

  function openDialogs(root) {
    root.querySelectorAll("dialog[data-modal]").forEach((dialog) => {
      if (!dialog.open) dialog.showModal();
      scrollLogs(dialog, true);
    });
  }

  // Emptying the root through htmx runs its clean-up, which closes the dialog's SSE stream.
  function clearModal() {
    const root = modalRoot();
    if (root && root.firstChild) htmx.swap(root, "", { swapStyle: "innerHTML" });
    // The URL stops naming the dialog: back to the entry before it was opened, if this page pushed it.
    if (dialogInUrl()) {
      if (history.state && history.state.genhrlDialog) history.back();
      else history.replaceState(null, "", urlWithDialog(null));
    }
  }

  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.detail.target && event.detail.target.id === MODAL_ROOT) {
      event.detail.target._fromUrl = null;
      openDialogs(event.detail.target);
      nameDialogInUrl(event.detail.target);
    }
  });

  // ---- the URL names the open dialog: refresh, a shared link and Back show the same thing --------
  const DIALOG_PARAMS = ["session", "train"];

  function dialogInUrl() {
    const params = new URLSearchParams(window.location.search);
    for (const name of DIALOG_PARAMS) {
      const value = params.get(name);
      if (value) return { name, value };
    }
    return null;
  }

  function urlWithDialog(dialog) {
    const url = new URL(window.location.href);
    DIALOG_PARAMS.forEach((name) => url.searchParams.delete(name));
    if (dialog) url.searchParams.set(dialog.name, dialog.value);
    return url.pathname + url.search + url.hash;
  }

  function nameDialogInUrl(root) {
    const dialog = root.querySelector("dialog[data-modal][data-url-param]");
    if (!dialog) return;
    const named = { name: dialog.dataset.urlParam, value: dialog.dataset.urlValue };
    const current = dialogInUrl();
    if (current && current.name === named.name && current.value === named.value) return;
    // One history entry per opened dialog: the form turning into the progress view replaces it.
    if (current) history.replaceState({ genhrlDialog: true }, "", urlWithDialog(named));
    else history.pushState({ genhrlDialog: true }, "", urlWithDialog(named));
  }

  function dialogUrl(named) {
    const root = modalRoot();
    if (!root) return null;
    if (named.name === "session" && /^\d{1,12}$/.test(named.value)) {
      return root.dataset.sessionUrl.replace("987654321", named.value);
    }
    const parts = named.value.split("/");
    if (named.name === "train" && parts.length === 2 && parts[0] && parts[1]) {
      return root.dataset.trainUrl.replace("ROBOT", encodeURIComponent(parts[0])).replace("TASK", encodeURIComponent(parts[1]));
    }
    return null;
  }

  function showDialogOfUrl() {
    const named = dialogInUrl();
    const root = modalRoot();
    if (!root) return;
    const open = root.querySelector("dialog[data-modal][data-url-param]");
    if (!named) {
      if (open && open.open) open.close();
      return;
    }
    // Only a dialog that is open now counts: one just closed (Back, then at once Forward) may still
    // be in the page until its clean-up swap runs, and would otherwise keep the dialog from opening.
    if (open && open.open && open.dataset.urlParam === named.name && open.dataset.urlValue === named.value) return;
    const url = dialogUrl(named);
    if (!url) {
      dialogProblem(named, null);
      return;
    }
    // Sent from the root itself, so its error (below) is told from a click's.
    root._fromUrl = named;
    htmx.ajax("GET", url, { source: "#" + MODAL_ROOT, target: "#" + MODAL_ROOT, swap: "innerHTML" });
  }

  // A URL naming a dialog that cannot open (not an id, no such session, one this person may not
  // see): the page says so and goes on working, and the URL stops naming it.
  function dialogProblem(named, status) {
    const shown = named.value.length > 40 ? named.value.slice(0, 40) + "…" : named.value;
    const what = named.name === "session" ? "session " + shown : "the training form of " + shown;
    let text;
    if (status === null) {
      text = named.name === "session" ? "“" + shown + "” is not a session id (the link's ?session= must be a number)."
        : "“" + shown + "” does not name a task (the link's ?train= must be robot/task).";
    } else if (status === 403 && named.name === "train") {
      text = "you may not start training, so " + what + " cannot open (it needs the “start training” permission).";
    } else if (status === 404 || status === 403) {
      text = what + " not found or not visible to you.";
    } else {
      text = "Could not open " + what + ": the server answered " + status + ".";
    }
    const main = document.getElementById("main") || document.body;
    let box = main.querySelector("[data-dialog-problem]");
    if (!box) {
      box = document.createElement("div");
      box.className = "alert alert-error";
      box.setAttribute("role", "alert");
      box.setAttribute("data-dialog-problem", "");
      main.prepend(box);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "alert-close";
    close.setAttribute("data-dismiss", "");
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    box.replaceChildren(close, document.createTextNode(text.charAt(0).toUpperCase() + text.slice(1)));
    history.replaceState(null, "", urlWithDialog(null));
  }

  window.addEventListener("popstate", showDialogOfUrl);

  // A dialog closes by its buttons, Escape, or a click on the backdrop; closing never stops training.
  document.addEventListener("close", (event) => {
    if (event.target.matches && event.target.matches("#modal-root dialog[data-modal]")) clearModal();
  }, true);

  document.addEventListener("click", (event) => {
    const closer = event.target.closest("[data-close-modal]");
    if (closer) {
      const dialog = closer.closest("dialog");
      if (dialog) dialog.close();
      return;
    }
    if (event.target.matches && event.target.matches("#modal-root dialog[data-modal]")) {
      const box = event.target.getBoundingClientRect();
      const inside = event.clientX >= box.left && event.clientX <= box.right &&
        event.clientY >= box.top && event.clientY <= box.bottom;
      if (!inside) event.target.close();
    }
    const dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) dismiss.parentElement.remove();
  });

  // ---- live progress: SSE, with polling while the stream is down --------------------------------
  function liveOf(node) {
    return node.closest ? node.closest("[data-session-live]") : null;
  }

  function stopPolling(live) {
    if (live && live._pollTimer) {
      clearInterval(live._pollTimer);
      live._pollTimer = null;
    }
  }

  function startPolling(live) {
    if (!live || live._pollTimer) return;
    live._pollTimer = setInterval(() => {
      const body = live.querySelector(".session-body");
      if (!document.body.contains(live) || !body || body.querySelector("[data-terminal]")) {
        stopPolling(live);
        return;
      }
      htmx.trigger(body, "poll");
    }, POLL_MS);
  }

  // A dropped stream shows "connection lost" (and greys the clock) unless it is back this soon.
  const OFFLINE_AFTER_MS = 1500;

  function setOffline(live, offline) {
    live.classList.toggle("live-offline", offline);
    const banner = live.querySelector("[data-live-connection]");
    if (banner) banner.hidden = !offline;
  }

  document.addEventListener("htmx:sseOpen", (event) => {
    const live = liveOf(event.target);
    if (!live) return;
    live.dataset.sse = "open";
    live._heardAt = Date.now();
    window.genhrlSse.push("open");
    clearTimeout(live._offlineTimer);
    setOffline(live, false);
    stopPolling(live);
    // Catch up at once: the state may have moved on while the stream was away.
    const body = live.querySelector(".session-body");
    if (body && live._wasOffline) htmx.trigger(body, "poll");
    live._wasOffline = false;
  });

  document.addEventListener("htmx:sseError", (event) => {
    const live = liveOf(event.target);
    if (!live) return;
    live.dataset.sse = "down";
    window.genhrlSse.push("error");
    live._wasOffline = true;
    clearTimeout(live._offlineTimer);
    live._offlineTimer = setTimeout(() => {
      if (live.dataset.sse === "down" && document.body.contains(live)) setOffline(live, true);
    }, OFFLINE_AFTER_MS);
    startPolling(live);
  });

  // A stream can die without an error (a server stopped without closing it, a network gone): the
  // server sends `alive` every few seconds, so silence this long means the connection is lost.
  const SILENT_MS = 7000;

  function heard(live) {
    live._heardAt = Date.now();
    if (live.classList.contains("live-offline") && live.dataset.sse === "open") setOffline(live, false);
  }

  setInterval(() => {
    document.querySelectorAll("[data-session-live][data-sse=open]").forEach((live) => {
      if (live._heardAt && Date.now() - live._heardAt > SILENT_MS && !live.classList.contains("live-offline")) {
        window.genhrlSse.push("silent");
        setOffline(live, true);
        live._wasOffline = true;
        startPolling(live);
      }
    });
  }, 1000);

  // The server's own notices (its database is away, or back): shown above the live view.
  document.addEventListener("htmx:sseBeforeMessage", (event) => {
    const live = liveOf(event.target);
    if (live) heard(live);
    if (event.target.matches && event.target.matches("[data-live-alive]")) {
      event.preventDefault(); // nothing to show: it only says the stream is alive
      return;
    }
    const box = event.target;
    if (!box.matches || !box.matches("[data-live-notice]")) return;
    event.preventDefault(); // not swapped: the data is JSON, shown as text
    let notice = {};
    try { notice = JSON.parse(event.detail.data); } catch (error) { notice = {}; }
    box.textContent = notice.message || "";
    box.hidden = !notice.message;
    window.genhrlSse.push("notice");
  });

  document.addEventListener("htmx:sseClose", (event) => {
    const live = liveOf(event.target);
    if (!live) return;
    live.dataset.sse = "closed";
    window.genhrlSse.push("close");
  });

  document.addEventListener("htmx:sseMessage", (event) => {
    const live = liveOf(event.target);
    if (live) heard(live);
    const type = event.detail && event.detail.type;
    if (type) window.genhrlSse.push(type);
    if (window.genhrlSse.length > 200) window.genhrlSse.splice(0, 100);
  });

  // ---- at most one panel refresh a second per viewer ----------------------------------------------
  // A training session changes a few times a second (each write of its supervisor) and each change
  // is a `progress` event; refetching the panel on every one costs the server a render per viewer
  // per event. A progress event (or a fallback poll) refreshes at once when the last refresh is a
  // second old, else once at the end of that second, with the newest state: no change is lost, the
  // view is never more than about a second behind, and `done` and actions are never delayed.
  const MIN_REFRESH_MS = 1000;
  const PACED = new Set(["sse:progress", "poll"]);

  document.addEventListener("htmx:confirm", (event) => {
    const body = event.detail.elt;
    if (!body.classList || !body.classList.contains("session-body")) return;
    const trigger = event.detail.triggeringEvent;
    const now = Date.now();
    if (!trigger || !PACED.has(trigger.type)) {
      body._refreshedAt = now;
      return;
    }
    const wait = (body._refreshedAt || 0) + MIN_REFRESH_MS - now;
    if (wait <= 0) {
      body._refreshedAt = now;
      return;
    }
    event.preventDefault();
    if (body._refreshTimer) return; // one refresh is already due: it will fetch the newest state
    body._refreshTimer = setTimeout(() => {
      body._refreshTimer = null;
      if (document.body.contains(body)) htmx.trigger(body, "poll");
    }, wait);
  });

  // ---- the trainer output: stay at the bottom unless the reader scrolled up ----------------------
  function scrollLogs(root, force) {
    root.querySelectorAll("[data-log]").forEach((log) => {
      if (force || log.dataset.follow !== "false") log.scrollTop = log.scrollHeight;
    });
  }

  document.addEventListener("scroll", (event) => {
    const log = event.target;
    if (log.matches && log.matches("[data-log]")) {
      const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
      const body = log.closest(".session-body");
      if (body) body.dataset.followLog = atBottom ? "true" : "false";
    }
  }, true);

  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    if (!target || !target.classList || !target.classList.contains("session-body")) return;
    const log = target.querySelector("[data-log]");
    target._logScroll = log ? log.scrollTop : null;
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (!target || !target.classList || !target.classList.contains("session-body")) return;
    const log = target.querySelector("[data-log]");
    if (!log) return;
    if (target.dataset.followLog === "false" && target._logScroll != null) {
      log.scrollTop = target._logScroll;
    } else {
      log.scrollTop = log.scrollHeight;
    }
    if (target.querySelector("[data-terminal]")) stopPolling(liveOf(target));
  });

  // ---- configuration form: the backend decides the defaults and ranges --------------------------
  document.addEventListener("change", (event) => {
    const select = event.target;
    if (!select.matches || !select.matches("#config-form select[name=backend]")) return;
    const form = select.form;
    const previous = select.dataset.previous || select.querySelector("option[selected]")?.value || "embedded";
    const next = select.value;
    form.querySelectorAll("input[data-default-" + next + "]").forEach((input) => {
      const oldDefault = input.getAttribute("data-default-" + previous);
      const newDefault = input.getAttribute("data-default-" + next);
      const range = input.getAttribute("data-range-" + next);
      if (range) {
        const [low, high] = range.split(",");
        input.min = low;
        input.max = high;
      }
      input.placeholder = newDefault;
      // Only values the person did not change follow the backend.
      if (input.value === "" || input.value === oldDefault) input.value = newDefault;
    });
    select.dataset.previous = next;
  }, true);

  // Video interval and length mean nothing with videos off: disabled (and not sent) until it is on.
  document.addEventListener("change", (event) => {
    const box = event.target;
    if (!box.matches || !box.matches("#config-form input[name=video]")) return;
    const fields = box.form.querySelector("[data-video-fields]");
    if (fields) fields.disabled = !box.checked;
  });

  // A form that came back with the server's messages: take the person to the first one.
  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.detail.xhr && event.detail.xhr.status === 422) {
      const bad = document.querySelector("#config-form .has-error input, #config-form .has-error select");
      if (bad) {
        bad.focus();
        bad.scrollIntoView({ block: "center" });
      }
    }
  });

  // ---- task list: "Train selected" ------------------------------------------------------------
  function bulkUpdate() {
    const boxes = Array.from(document.querySelectorAll("input[data-bulk-select]"));
    const count = boxes.filter((box) => box.checked).length;
    const label = document.querySelector("[data-bulk-count]");
    const all = document.querySelector("input[data-bulk-all]");
    if (label) {
      label.textContent = count
        ? count + " task" + (count === 1 ? "" : "s") + " selected: each starts with default settings, in this order."
        : "Select tasks to train them one after another.";
    }
    if (all) {
      all.checked = boxes.length > 0 && count === boxes.length;
      all.indeterminate = count > 0 && count < boxes.length;
    }
  }

  document.addEventListener("change", (event) => {
    if (event.target.matches("input[data-bulk-all]")) {
      document.querySelectorAll("input[data-bulk-select]").forEach((box) => { box.checked = event.target.checked; });
    }
    if (event.target.matches("input[data-bulk-all], input[data-bulk-select]")) bulkUpdate();
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.elt && event.detail.elt.id === "bulk-train" && event.detail.successful) {
      document.querySelectorAll("input[data-bulk-select]:checked").forEach((box) => { box.checked = false; });
      bulkUpdate();
    }
  });

  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.detail.target && event.detail.target.id === "task-results") bulkUpdate();
  });

  // ---- errors worth telling a person ------------------------------------------------------------
  let lastToast = 0;
  function toast(text) {
    const now = Date.now();
    if (now - lastToast < 8000) return;
    lastToast = now;
    let box = document.getElementById("toast");
    if (!box) {
      box = document.createElement("div");
      box.id = "toast";
      box.className = "toast";
      box.setAttribute("role", "alert");
      document.body.appendChild(box);
    }
    box.textContent = text;
    box.hidden = false;
    clearTimeout(box._timer);
    box._timer = setTimeout(() => { box.hidden = true; }, 7000);
  }

  document.addEventListener("htmx:responseError", (event) => {
    const status = event.detail.xhr.status;
    const root = modalRoot();
    if (root && event.target === root && root._fromUrl) {
      const named = root._fromUrl;
      root._fromUrl = null;
      dialogProblem(named, status);
      return;
    }
    const text = status === 403
      ? "Not allowed: only the person who started a session, or staff, can change it."
      : status === 404
        ? "Not found: it may have been deleted. Reload the page."
        : "The server answered " + status + ". Try again; if it persists, check the server's log.";
    toast(text);
  });

  document.addEventListener("htmx:sendError", () => {
    toast("Cannot reach the portal. Live views retry on their own; check the server or your connection.");
  });

  document.addEventListener("DOMContentLoaded", () => {
    scrollLogs(document, true);
    bulkUpdate();
    // A refreshed or shared URL: its dialog opens; closing it just drops the parameter.
    if (dialogInUrl() && history.state && history.state.genhrlDialog) history.replaceState(null, "", window.location.href);
    showDialogOfUrl();
  });
})();
