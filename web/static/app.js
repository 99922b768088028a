// Leakwatch dashboard behaviour: forms that register or rotate a key compute
// the fingerprint here, put it in the hidden "fingerprint" field and clear
// the secret field, which has no name and so is never submitted.
"use strict";

document.addEventListener("submit", async function (ev) {
  const form = ev.target;
  if (!form.matches || !form.matches("form[data-fingerprint]")) return;
  if (form.dataset.ready === "1") return;
  ev.preventDefault();
  const input = form.querySelector("input[data-secret]");
  const out = form.querySelector("input[name=fingerprint]");
  const msg = form.querySelector(".fp-error");
  try {
    const allowWeak = !!(form.querySelector("input[name=allow_weak]") || {}).checked;
    out.value = await window.LeakwatchFingerprint.compute(input.value, { allowWeak: allowWeak });
    input.value = "";
    form.dataset.ready = "1";
    form.submit();
  } catch (e) {
    if (msg) msg.textContent = e.message;
  }
});

// "Back" on an error page returns to the form as it was filled in (the
// browser keeps a form's input in its history) instead of a blank page.
document.addEventListener("click", function (ev) {
  const a = ev.target.closest && ev.target.closest("a[data-back]");
  if (!a || history.length < 2) return;
  ev.preventDefault();
  history.back();
});
