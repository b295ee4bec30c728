// Text put into HTML (the verification email, the page its link answers): every character that could start markup
// or end an attribute is written as a character reference.
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
