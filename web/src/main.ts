// Entry of the account page and operator console (bundled by scripts/build-web.ts into dist/web/app.js).
import { html, render } from 'htm/preact';
import { App } from './ui/app.js';

const root = document.getElementById('root');
if (root) {
  root.textContent = '';
  render(html`<${App} />`, root);
}
