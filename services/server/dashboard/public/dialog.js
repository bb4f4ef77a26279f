// The confirmation every action asks for (index.html's <dialog id="confirm">).
import { byId } from './dom.js';

/**
 * Shows `question` with a button named `label`; resolves true only when that button was pressed
 * (Cancel, Escape or closing it otherwise resolve false).
 * @param {string} question
 * @param {string} label
 * @returns {Promise<boolean>}
 */
export function confirmed(question, label) {
  const dialog = byId('confirm', HTMLDialogElement);
  byId('confirm-text', HTMLElement).textContent = question;
  byId('confirm-ok', HTMLButtonElement).textContent = label;
  // Escape closes the dialog without a new returnValue: start from none.
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

/** Wires the dialog's two buttons; once, at start. */
export function wireConfirm() {
  const dialog = byId('confirm', HTMLDialogElement);
  byId('confirm-cancel', HTMLElement).addEventListener('click', () => dialog.close('cancel'));
  byId('confirm-ok', HTMLElement).addEventListener('click', () => dialog.close('ok'));
}
