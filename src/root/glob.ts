/** Branch-name globs: `*` (any run of characters), `?` (one character), `[abc]` / `[!abc]` (a class). */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      // a ']' right after '[' or '[!' belongs to the class
      const negate = glob[i + 1] === '!';
      const end = glob.indexOf(']', i + (negate ? 3 : 2));
      if (end < 0) re += '\\[';
      else {
        const body = glob.slice(i + (negate ? 2 : 1), end).replace(/[\\\]^]/g, '\\$&');
        re += `[${negate ? '^' : ''}${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function isGlob(s: string): boolean {
  return /[*?[]/.test(s);
}
