/*
 * "Download your data" on the account page (templates/accounts/account.html): starts an export of
 * the user's own data (POST /api/v1/account/exports/), shows its progress by polling the export,
 * then a link to the ZIP. One export at a time: an unfinished one is picked up again on load.
 * Served as an ES module (the CSP allows no inline script); its URLs come from data- attributes.
 */
import { api } from "./chat/api.js";

const POLL_MS = 1500;

function setup(section) {
  const listUrl = section.dataset.exportsUrl;
  const button = section.querySelector("[data-export-start]");
  const progress = section.querySelector("progress");
  const status = section.querySelector("[data-export-status]");
  const link = section.querySelector("[data-export-download]");
  let timer = null;

  function show(exp) {
    const percent = exp.progress.percent;
    progress.hidden = !(exp.status === "queued" || exp.status === "running");
    progress.value = percent;
    link.hidden = !exp.urls.download;
    if (exp.urls.download) link.href = exp.urls.download;
    button.disabled = !progress.hidden;
    if (exp.status === "queued") status.textContent = "Waiting to start…";
    else if (exp.status === "running") status.textContent = `Preparing your data: ${percent}%`;
    else if (exp.status === "done") {
      const until = exp.expires_at ? new Date(exp.expires_at).toLocaleString() : "";
      status.textContent = until ? `Ready. The file is kept until ${until}.` : "Ready.";
    } else if (exp.status === "failed") status.textContent = exp.error || "The export failed; try again.";
    else status.textContent = "Your last export has expired; start a new one.";
  }

  function follow(exp) {
    show(exp);
    clearTimeout(timer);
    if (exp.status === "queued" || exp.status === "running") {
      timer = setTimeout(async () => {
        try {
          follow(await api("GET", exp.urls.status));
        } catch (error) {
          status.textContent = error.message;
          timer = setTimeout(() => follow(exp), POLL_MS * 4);
        }
      }, POLL_MS);
    }
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      follow(await api("POST", listUrl, { include_files: true }));
    } catch (error) {
      status.textContent = error.message;
      button.disabled = false;
    }
  });

  api("GET", listUrl)
    .then((exports) => {
      if (exports.length) follow(exports[0]);
    })
    .catch(() => {});
}

const section = document.getElementById("data-export");
if (section) setup(section);
