// What every view of the page shares: its elements, its texts (templates/wallet/index.html's
// `#texts`, in the page's language, with `{name}` placeholders), the message line, and buttons
// that run a task and show its refusal.

export const $ = (id) => document.getElementById(id);
export const lang = () => document.documentElement.lang;
const hooks = { failed: () => {}, after: async () => {} };

/** The page's text `name` with `values` filled in (the name itself if the page has none). */
export function text(name, values = {}) {
  const item = document.querySelector(`#texts [data-text="${name}"], #passkey-texts [data-text="${name}"], #oidc-texts [data-text="${name}"], #request-texts [data-text="${name}"]`);
  const template = item ? item.textContent : name;
  return template.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
}

/** Show text `name` in the message line. */
export function say(name, values) {
  $("message").textContent = text(name, values);
  $("message").dataset.text = name;
}

/** An element with a class and text content (never markup). */
export function element(tag, className, content = "") {
  const made = document.createElement(tag);
  if (className) made.className = className;
  made.textContent = content;
  return made;
}

/** What `busy` does when a task fails (show why) and after every task (show the state). */
export function setHooks(failed, after) {
  hooks.failed = failed;
  hooks.after = after;
}

/** An event handler that runs `task` with `button` disabled meanwhile. */
export function busy(button, task) {
  return async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await task();
    } catch (error) {
      hooks.failed(error);
    } finally {
      button.disabled = false;
      await hooks.after();
    }
  };
}
