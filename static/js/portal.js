// GenHRL Portal: small progressive enhancements. Everything works without this file.
"use strict";

// "Expand all" / "Collapse all" for the skill tree (the tree itself is plain <details>).
function setupTreeTools(root) {
  root.querySelectorAll("[data-tree-tools]").forEach((tools) => {
    const card = tools.closest(".card");
    tools.hidden = false;
    tools.addEventListener("click", (event) => {
      const button = event.target.closest("[data-tree-toggle]");
      if (!button) return;
      const open = button.dataset.treeToggle === "open";
      card.querySelectorAll(".tree details").forEach((details) => { details.open = open; });
    });
  });
}

// Close the user menu when clicking elsewhere or pressing Escape.
function setupMenus() {
  document.addEventListener("click", (event) => {
    document.querySelectorAll("details.user-menu[open]").forEach((menu) => {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.user-menu[open]").forEach((menu) => { menu.open = false; });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setupTreeTools(document);
  setupMenus();
});

// A signed-out session turns every htmx request into the login page: go there instead of
// swapping it into a fragment, and come back to this page after signing in.
document.addEventListener("htmx:beforeSwap", (event) => {
  const login = document.body.dataset.loginUrl;
  const answered = event.detail.xhr && event.detail.xhr.responseURL;
  if (!login || !answered) return;
  if (new URL(answered).pathname === login) {
    event.detail.shouldSwap = false;
    const here = window.location.pathname + window.location.search;
    window.location.assign(login + "?next=" + encodeURIComponent(here));
  }
});
