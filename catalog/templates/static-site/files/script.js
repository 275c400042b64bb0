// Behaviour of the page. Loaded with `defer`, so the DOM is ready.

// Footer year.
document.getElementById('year').textContent = String(new Date().getFullYear());

// Mobile menu.
const menuButton = document.querySelector('.menu-toggle');
const nav = document.getElementById('site-nav');

function setMenu(open) {
  nav.classList.toggle('open', open);
  menuButton.setAttribute('aria-expanded', String(open));
  menuButton.setAttribute('aria-label', open ? 'Close menu' : 'Open menu');
}

menuButton.addEventListener('click', () => setMenu(!nav.classList.contains('open')));
nav.addEventListener('click', (event) => {
  if (event.target instanceof HTMLAnchorElement) setMenu(false);
});
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') setMenu(false);
});

// Theme: follows the system until the visitor picks one, then remembers it.
const root = document.documentElement;
const systemDark = window.matchMedia('(prefers-color-scheme: dark)');

document.querySelector('.theme-toggle').addEventListener('click', () => {
  const current = root.dataset.theme ?? (systemDark.matches ? 'dark' : 'light');
  const next = current === 'dark' ? 'light' : 'dark';
  root.dataset.theme = next;
  try {
    localStorage.setItem('theme', next);
  } catch {
    // Storage disabled: the choice lasts for this page view only.
  }
});

// Reveal cards as they scroll into view.
const revealed = document.querySelectorAll('.reveal');
if ('IntersectionObserver' in window) {
  const observer = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        if (entry.isIntersecting) {
          entry.target.classList.add('visible');
          observer.unobserve(entry.target);
        }
      }
    },
    { threshold: 0.15 },
  );
  revealed.forEach((el) => observer.observe(el));
} else {
  revealed.forEach((el) => el.classList.add('visible'));
}

// Contact form: validate in the browser, then open the visitor's mail app.
// To receive messages without a mail app, point the form at a form backend
// (Formspree, Netlify Forms, your own API) and drop this handler.
const form = document.getElementById('contact-form');
const status = form.querySelector('.form-status');

form.addEventListener('submit', (event) => {
  event.preventDefault();
  let firstInvalid = null;
  for (const field of form.elements) {
    if (!(field instanceof HTMLInputElement || field instanceof HTMLTextAreaElement)) continue;
    field.value = field.value.trim();
    const valid = field.checkValidity();
    field.setAttribute('aria-invalid', String(!valid));
    if (!valid && !firstInvalid) firstInvalid = field;
  }
  if (firstInvalid) {
    status.textContent = `Please check the ${firstInvalid.name} field.`;
    firstInvalid.focus();
    return;
  }
  const data = new FormData(form);
  const subject = encodeURIComponent(`Message from ${data.get('name')}`);
  const body = encodeURIComponent(`${data.get('message')}\n\n${data.get('name')} <${data.get('email')}>`);
  window.location.href = `mailto:${form.dataset.email}?subject=${subject}&body=${body}`;
  status.textContent = 'Opening your mail app...';
  form.reset();
});
