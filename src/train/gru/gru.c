/*
 * Fused GRU forward + backpropagation through time, Keras GRU(reset_after=True) semantics.
 *
 * Built for wasm32 + simd128 without any libc (see scripts/build-gru-wasm.sh); driven by index.ts.
 * Semantics and memory layout are documented in docs/gru-kernel.md. In short, for each sample b and step t:
 *
 *   z  = sigmoid(x_t Wz + bxz + h Uz + bhz)
 *   r  = sigmoid(x_t Wr + bxr + h Ur + bhr)
 *   n  = tanh   (x_t Wn + bxn + r * (h Un + bhn))
 *   h' = z * h + (1 - z) * n
 *
 * A step whose features are all exactly zero is masked (Keras Masking(0.0)): h' = h. Steps after the last
 * unmasked one ("padding") are never computed, so the cost is proportional to each sample's real length.
 *
 * How the work is organised:
 *  - The samples are sorted by length, longest first (a stable counting sort), so at step t the samples
 *    still running are a prefix of nact[t] rows. Every step is then two small dense GEMMs over that prefix
 *    (input and recurrent projections) followed by a fused, vectorised gate pass.
 *  - Units are padded to Up = roundup(U, 4) and features to Fp = roundup(F, 4); each gate block has Up
 *    columns, G = 3 * Up. Padded weights and biases are zero, which keeps padded units at exactly 0.
 *  - In training mode every step's input state h_t and its z, r, n and (h Un + bhn) are kept, packed by
 *    step (only the active rows), for the backward pass. A masked row stores z = 1 and r = n = 0: that
 *    makes the backward formulas give exactly dh_prev = dh and zero parameter gradients for that row,
 *    with no special case.
 *  - Memory is a bump arena above __heap_base that grows the wasm memory on demand. gru_begin() resets
 *    it. One forward is kept at a time; gru_backward() may be called any number of times after it.
 *
 * All buffers exchanged with JavaScript are float32, in Keras layout: kernel [F, 3U], recurrent_kernel
 * [U, 3U] (gate blocks z, r, h), bias [2, 3U] (row 0 input bias, row 1 recurrent bias), x [B, T, F],
 * h_T and dh_T [B, U].
 */
#include <stdint.h>
#include <wasm_simd128.h>

typedef float f32;
typedef v128_t vf;

#define EXPORT(name) __attribute__((export_name(#name)))
#define INLINE static inline __attribute__((always_inline))

/* ------------------------------------------------------------------------------------------------ */
/* Arena                                                                                            */
/* ------------------------------------------------------------------------------------------------ */

extern unsigned char __heap_base;
static uint32_t arena_top;   /* next free byte */
static uint32_t arena_mark;  /* arena_top just after the forward pass (backward allocates above it) */

/* 16-byte aligned allocation, growing the memory when needed. Returns 0 when out of memory. */
static void *arena_alloc(uint64_t bytes) {
  uint64_t p = ((uint64_t)arena_top + 15u) & ~(uint64_t)15u;
  uint64_t end = p + bytes;
  if (end > 0xFFFF0000ull) return 0;
  uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) << 16;
  if (end > have) {
    uint64_t pages = (end - have + 65535u) >> 16;
    if (__builtin_wasm_memory_grow(0, (uint32_t)pages) == (__SIZE_TYPE__)-1) return 0;
  }
  arena_top = (uint32_t)end;
  return (void *)(uintptr_t)p;
}

static void zero_f32(f32 *p, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) p[i] = 0.0f;
}

/* ------------------------------------------------------------------------------------------------ */
/* State of the current batch                                                                       */
/* ------------------------------------------------------------------------------------------------ */

static struct {
  int32_t B, T, F, U, Fp, Up, G, training, tmax, have_fwd;
  /* caller-visible buffers (Keras layout) */
  f32 *x, *kernel, *rec, *bias, *out, *dhT, *dkernel, *drec, *dbias;
  /* padded weights: Wx [Fp, G], Wh [Up, G], WhT [G, Up], bx [G], bh [G] */
  f32 *Wx, *Wh, *WhT, *bx, *bh;
  /* per-sample length, sorted order (perm[i] = sample), active rows per step, packed row offset per step */
  int32_t *len, *perm, *nact, *rowoff;
  uint8_t *mask;                /* [rows] 1 when the packed row is a masked (all-zero) step */
  f32 *X;                       /* [rows, Fp] packed inputs */
  f32 *H, *Z, *R, *N, *GHN;     /* [rows, Up] each in training mode; ring buffers otherwise */
  f32 *Ga, *Gb;                 /* [B, G] per-step scratch: pre-activations, then their gradients */
  f32 *hfin;                    /* [B, Up] final state, sorted order */
} S;

/* ------------------------------------------------------------------------------------------------ */
/* Vector math                                                                                      */
/* ------------------------------------------------------------------------------------------------ */

INLINE vf splat(f32 a) { return wasm_f32x4_splat(a); }
INLINE vf add(vf a, vf b) { return wasm_f32x4_add(a, b); }
INLINE vf sub(vf a, vf b) { return wasm_f32x4_sub(a, b); }
INLINE vf mul(vf a, vf b) { return wasm_f32x4_mul(a, b); }
INLINE vf ld(const f32 *p) { return wasm_v128_load(p); }
INLINE void st(f32 *p, vf a) { wasm_v128_store(p, a); }

/* exp(x) for float32 lanes: Cephes expf (range reduction by ln 2, degree-6 polynomial, ~1 ulp).
 * The argument is clamped so that the result stays finite and normal. */
INLINE vf v_exp(vf x) {
  x = wasm_f32x4_pmin(wasm_f32x4_pmax(x, splat(-87.33654f)), splat(88.37626f));
  vf n = wasm_f32x4_nearest(mul(x, splat(1.44269504088896341f)));
  vf r = sub(sub(x, mul(n, splat(0.693359375f))), mul(n, splat(-2.12194440e-4f)));
  vf p = splat(1.9875691500e-4f);
  p = add(mul(p, r), splat(1.3981999507e-3f));
  p = add(mul(p, r), splat(8.3334519073e-3f));
  p = add(mul(p, r), splat(4.1665795894e-2f));
  p = add(mul(p, r), splat(1.6666665459e-1f));
  p = add(mul(p, r), splat(5.0000001201e-1f));
  p = add(add(mul(mul(p, r), r), r), splat(1.0f));
  vf e = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return mul(p, e);
}

INLINE vf v_sigmoid(vf x) {
  return wasm_f32x4_div(splat(1.0f), add(splat(1.0f), v_exp(wasm_f32x4_neg(x))));
}

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|) */
INLINE vf v_tanh(vf x) {
  vf e = v_exp(mul(wasm_f32x4_abs(x), splat(-2.0f)));
  vf t = wasm_f32x4_div(sub(splat(1.0f), e), add(splat(1.0f), e));
  return wasm_v128_or(t, wasm_v128_and(x, wasm_i32x4_splat((int32_t)0x80000000)));
}

/* ------------------------------------------------------------------------------------------------ */
/* GEMM micro-kernels (row-major, N and the padded K dimensions are multiples of 4)                  */
/* ------------------------------------------------------------------------------------------------ */

/* C[MR rows, NV*4 cols] = init + A[MR, K] B[K, cols]. init: C itself (acc), a bias row, or zero. */
INLINE void tile_ab(int mr, int nv, int K, const f32 *A, int lda, const f32 *B, int ldb, const f32 *bias,
                    f32 *C, int ldc, int acc) {
  vf c[4][3];
  for (int r = 0; r < mr; r++)
    for (int q = 0; q < nv; q++)
      c[r][q] = acc ? ld(C + r * ldc + 4 * q) : bias ? ld(bias + 4 * q) : splat(0.0f);
  for (int k = 0; k < K; k++) {
    vf b[3];
    for (int q = 0; q < nv; q++) b[q] = ld(B + k * ldb + 4 * q);
    for (int r = 0; r < mr; r++) {
      vf a = wasm_v128_load32_splat(A + r * lda + k);
      for (int q = 0; q < nv; q++) c[r][q] = add(c[r][q], mul(a, b[q]));
    }
  }
  for (int r = 0; r < mr; r++)
    for (int q = 0; q < nv; q++) st(C + r * ldc + 4 * q, c[r][q]);
}

/* C[M, N] (=|+=) [bias +] A[M, K] B[K, N] */
static void gemm_ab(int M, int N, int K, const f32 *A, int lda, const f32 *B, int ldb, const f32 *bias, f32 *C,
                    int ldc, int acc) {
  int i = 0;
  for (; i + 4 <= M; i += 4) {
    const f32 *a = A + i * lda;
    f32 *c = C + i * ldc;
    int j = 0;
    for (; j + 8 <= N; j += 8) tile_ab(4, 2, K, a, lda, B + j, ldb, bias ? bias + j : 0, c + j, ldc, acc);
    if (j < N) tile_ab(4, 1, K, a, lda, B + j, ldb, bias ? bias + j : 0, c + j, ldc, acc);
  }
  for (; i < M; i++) {
    const f32 *a = A + i * lda;
    f32 *c = C + i * ldc;
    int j = 0;
    for (; j + 12 <= N; j += 12) tile_ab(1, 3, K, a, lda, B + j, ldb, bias ? bias + j : 0, c + j, ldc, acc);
    for (; j < N; j += 4) tile_ab(1, 1, K, a, lda, B + j, ldb, bias ? bias + j : 0, c + j, ldc, acc);
  }
}

/* W[4 rows k..k+3, NV*4 cols] += sum_m A[m, k..k+3]^T D[m, cols] */
INLINE void tile_atb(int nv, int M, const f32 *A, int lda, const f32 *D, int ldd, f32 *W, int ldw) {
  vf c[4][2];
  for (int r = 0; r < 4; r++)
    for (int q = 0; q < nv; q++) c[r][q] = ld(W + r * ldw + 4 * q);
  for (int m = 0; m < M; m++) {
    vf av = ld(A + m * lda);
    vf a[4] = {wasm_i32x4_shuffle(av, av, 0, 0, 0, 0), wasm_i32x4_shuffle(av, av, 1, 1, 1, 1),
               wasm_i32x4_shuffle(av, av, 2, 2, 2, 2), wasm_i32x4_shuffle(av, av, 3, 3, 3, 3)};
    vf d[2];
    for (int q = 0; q < nv; q++) d[q] = ld(D + m * ldd + 4 * q);
    for (int r = 0; r < 4; r++)
      for (int q = 0; q < nv; q++) c[r][q] = add(c[r][q], mul(a[r], d[q]));
  }
  for (int r = 0; r < 4; r++)
    for (int q = 0; q < nv; q++) st(W + r * ldw + 4 * q, c[r][q]);
}

/* W[K, N] += A[M, K]^T D[M, N]   (K a multiple of 4) */
static void gemm_atb(int K, int N, int M, const f32 *A, int lda, const f32 *D, int ldd, f32 *W, int ldw) {
  for (int k = 0; k < K; k += 4) {
    int j = 0;
    for (; j + 8 <= N; j += 8) tile_atb(2, M, A + k, lda, D + j, ldd, W + k * ldw + j, ldw);
    if (j < N) tile_atb(1, M, A + k, lda, D + j, ldd, W + k * ldw + j, ldw);
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* Exports                                                                                          */
/* ------------------------------------------------------------------------------------------------ */

/* Start a batch: resets the arena and allocates the caller's input buffers. Returns 1, or 0 when out of
 * memory or on bad dimensions. Then fill gru_x(), gru_kernel(), gru_recurrent(), gru_bias(). */
EXPORT(gru_begin) int32_t gru_begin(int32_t B, int32_t T, int32_t F, int32_t U, int32_t training) {
  S.have_fwd = 0;
  if (B < 0 || T < 0 || F < 1 || U < 1) return 0;
  arena_top = (uint32_t)(uintptr_t)&__heap_base;
  S.B = B, S.T = T, S.F = F, S.U = U, S.training = training != 0;
  S.Fp = (F + 3) & ~3, S.Up = (U + 3) & ~3, S.G = 3 * S.Up;
  S.x = arena_alloc((uint64_t)B * T * F * 4);
  S.kernel = arena_alloc((uint64_t)F * 3 * U * 4);
  S.rec = arena_alloc((uint64_t)U * 3 * U * 4);
  S.bias = arena_alloc((uint64_t)2 * 3 * U * 4);
  return S.x && S.kernel && S.rec && S.bias;
}

EXPORT(gru_x) f32 *gru_x(void) { return S.x; }
EXPORT(gru_kernel) f32 *gru_kernel(void) { return S.kernel; }
EXPORT(gru_recurrent) f32 *gru_recurrent(void) { return S.rec; }
EXPORT(gru_bias) f32 *gru_bias(void) { return S.bias; }
EXPORT(gru_out) f32 *gru_out(void) { return S.out; }     /* h_T [B, U] after gru_forward */
EXPORT(gru_dh) f32 *gru_dh(void) { return S.dhT; }       /* dL/dh_T [B, U], to fill before gru_backward */
EXPORT(gru_dkernel) f32 *gru_dkernel(void) { return S.dkernel; }
EXPORT(gru_drecurrent) f32 *gru_drecurrent(void) { return S.drec; }
EXPORT(gru_dbias) f32 *gru_dbias(void) { return S.dbias; }
EXPORT(gru_lengths) int32_t *gru_lengths(void) { return S.len; } /* [B] steps up to the last unmasked one */

/* Training mode: the packed rows of step t. Otherwise: a ring of two B-row slots (states) or one (gates). */
INLINE f32 *state_at(int t) {
  return S.training ? S.H + (uint32_t)S.rowoff[t] * S.Up : S.H + (uint32_t)(t & 1) * S.B * S.Up;
}
INLINE uint32_t gate_row0(int t) { return S.training ? (uint32_t)S.rowoff[t] : 0; }

/* Forward pass over the batch set up by gru_begin. Returns 1, or 0 when out of memory. */
EXPORT(gru_forward) int32_t gru_forward(void) {
  const int B = S.B, T = S.T, F = S.F, U = S.U, Fp = S.Fp, Up = S.Up, G = S.G;
  S.have_fwd = 0;

  /* Padded weights. */
  S.Wx = arena_alloc((uint64_t)Fp * G * 4);
  S.Wh = arena_alloc((uint64_t)Up * G * 4);
  S.WhT = arena_alloc((uint64_t)G * Up * 4);
  S.bx = arena_alloc((uint64_t)G * 4);
  S.bh = arena_alloc((uint64_t)G * 4);
  S.len = arena_alloc((uint64_t)B * 4 + 4);
  S.perm = arena_alloc((uint64_t)B * 4 + 4);
  S.nact = arena_alloc((uint64_t)(T + 1) * 4);
  S.rowoff = arena_alloc((uint64_t)(T + 1) * 4);
  int32_t *count = arena_alloc((uint64_t)(T + 2) * 4);
  if (!S.Wx || !S.Wh || !S.WhT || !S.bx || !S.bh || !S.len || !S.perm || !S.nact || !S.rowoff || !count) return 0;
  zero_f32(S.Wx, Fp * G), zero_f32(S.Wh, Up * G), zero_f32(S.WhT, G * Up), zero_f32(S.bx, G), zero_f32(S.bh, G);
  for (int g = 0; g < 3; g++)
    for (int j = 0; j < U; j++) {
      for (int f = 0; f < F; f++) S.Wx[f * G + g * Up + j] = S.kernel[f * 3 * U + g * U + j];
      for (int k = 0; k < U; k++) {
        f32 w = S.rec[k * 3 * U + g * U + j];
        S.Wh[k * G + g * Up + j] = w;
        S.WhT[(g * Up + j) * Up + k] = w;
      }
      S.bx[g * Up + j] = S.bias[g * U + j];
      S.bh[g * Up + j] = S.bias[3 * U + g * U + j];
    }

  /* Lengths: 1 + index of the last step with a non-zero feature (NaN counts as non-zero, -0 as zero). */
  for (int b = 0; b < B; b++) {
    int L = 0;
    for (int t = T - 1; t >= 0 && !L; t--) {
      const f32 *row = S.x + ((uint64_t)b * T + t) * F;
      for (int f = 0; f < F; f++)
        if (row[f] != 0.0f) { L = t + 1; break; }
    }
    S.len[b] = L;
  }
  /* Stable counting sort, longest first. */
  for (int l = 0; l <= T + 1; l++) count[l] = 0;
  for (int b = 0; b < B; b++) count[S.len[b]]++;
  for (int l = T, pos = 0; l >= 0; l--) { int c = count[l]; count[l] = pos; pos += c; }
  for (int b = 0; b < B; b++) S.perm[count[S.len[b]]++] = b;
  S.tmax = B ? S.len[S.perm[0]] : 0;
  /* nact[t] = rows with len > t; rowoff = prefix sums over steps. */
  {
    int i = B;
    uint32_t off = 0;
    for (int t = 0; t <= T; t++) {
      while (i > 0 && S.len[S.perm[i - 1]] <= t) i--;
      S.nact[t] = i;
      S.rowoff[t] = (int32_t)off;
      off += (uint32_t)i;
    }
  }
  const uint64_t rows = (uint64_t)S.rowoff[S.tmax];

  /* Packed inputs and masks. */
  S.X = arena_alloc(rows * Fp * 4);
  S.mask = arena_alloc(rows + 1);
  const uint64_t srows = S.training ? rows + B : 2ull * B; /* + B: room for the state after the last step */
  const uint64_t grows = S.training ? rows : (uint64_t)B;
  S.H = arena_alloc(srows * Up * 4);
  S.Z = arena_alloc(grows * Up * 4);
  S.R = arena_alloc(grows * Up * 4);
  S.N = arena_alloc(grows * Up * 4);
  S.GHN = arena_alloc(grows * Up * 4);
  S.Ga = arena_alloc((uint64_t)B * G * 4);
  S.Gb = arena_alloc((uint64_t)B * G * 4);
  S.hfin = arena_alloc((uint64_t)B * Up * 4);
  S.out = arena_alloc((uint64_t)B * U * 4);
  S.dhT = arena_alloc((uint64_t)B * U * 4);
  if (!S.X || !S.mask || !S.H || !S.Z || !S.R || !S.N || !S.GHN || !S.Ga || !S.Gb || !S.hfin || !S.out || !S.dhT)
    return 0;
  for (int t = 0; t < S.tmax; t++) {
    const uint32_t r0 = (uint32_t)S.rowoff[t];
    for (int i = 0; i < S.nact[t]; i++) {
      const f32 *src = S.x + ((uint64_t)S.perm[i] * T + t) * F;
      f32 *dst = S.X + (uint64_t)(r0 + i) * Fp;
      int any = 0;
      for (int f = 0; f < F; f++) { dst[f] = src[f]; any |= src[f] != 0.0f; }
      for (int f = F; f < Fp; f++) dst[f] = 0.0f;
      S.mask[r0 + i] = !any;
    }
  }

  zero_f32(S.hfin, B * Up);
  if (S.tmax > 0) zero_f32(state_at(0), S.nact[0] * Up);

  const vf one = splat(1.0f), zero = splat(0.0f);
  for (int t = 0; t < S.tmax; t++) {
    const int m = S.nact[t], m1 = S.nact[t + 1];
    const uint32_t r0 = (uint32_t)S.rowoff[t], g0 = gate_row0(t);
    const f32 *Xt = S.X + (uint64_t)r0 * Fp;
    const f32 *Ht = state_at(t);
    f32 *Hn = state_at(t + 1);
    gemm_ab(m, G, Fp, Xt, Fp, S.Wx, G, S.bx, S.Ga, G, 0); /* Ga = bx + x_t Wx */
    gemm_ab(m, G, Up, Ht, Up, S.Wh, G, S.bh, S.Gb, G, 0); /* Gb = bh + h_t Wh */
    for (int i = 0; i < m; i++) {
      const f32 *ga = S.Ga + i * G, *gb = S.Gb + i * G, *h = Ht + i * Up;
      f32 *hn = i < m1 ? Hn + i * Up : S.hfin + i * Up; /* a row ending at this step writes its final state */
      const uint32_t gr = (g0 + i) * Up;
      f32 *zs = S.Z + gr, *rs = S.R + gr, *ns = S.N + gr, *ghs = S.GHN + gr;
      if (S.mask[r0 + i]) {
        for (int j = 0; j < Up; j += 4) {
          st(hn + j, ld(h + j));
          st(zs + j, one), st(rs + j, zero), st(ns + j, zero), st(ghs + j, zero);
        }
        continue;
      }
      for (int j = 0; j < Up; j += 4) {
        vf z = v_sigmoid(add(ld(ga + j), ld(gb + j)));
        vf r = v_sigmoid(add(ld(ga + Up + j), ld(gb + Up + j)));
        vf ghn = ld(gb + 2 * Up + j);
        vf n = v_tanh(add(ld(ga + 2 * Up + j), mul(r, ghn)));
        vf hv = ld(h + j);
        st(hn + j, add(mul(z, hv), mul(sub(one, z), n)));
        st(zs + j, z), st(rs + j, r), st(ns + j, n), st(ghs + j, ghn);
      }
    }
  }

  for (int i = 0; i < B; i++) {
    const int b = S.perm[i];
    for (int j = 0; j < U; j++) S.out[b * U + j] = S.hfin[i * Up + j];
  }
  arena_mark = arena_top;
  S.have_fwd = 1;
  return 1;
}

/* Backward pass for the last forward (training mode), from dL/dh_T in gru_dh(). Fills gru_dkernel(),
 * gru_drecurrent() and gru_dbias(). Returns 1, 0 when out of memory, -1 without a training forward. */
EXPORT(gru_backward) int32_t gru_backward(void) {
  if (!S.have_fwd || !S.training) return -1;
  const int B = S.B, F = S.F, U = S.U, Fp = S.Fp, Up = S.Up, G = S.G;
  arena_top = arena_mark;
  f32 *dh = arena_alloc((uint64_t)B * Up * 4);
  f32 *dWx = arena_alloc((uint64_t)Fp * G * 4);
  f32 *dWh = arena_alloc((uint64_t)Up * G * 4);
  f32 *dbx = arena_alloc((uint64_t)G * 4);
  f32 *dbh = arena_alloc((uint64_t)G * 4);
  S.dkernel = arena_alloc((uint64_t)F * 3 * U * 4);
  S.drec = arena_alloc((uint64_t)U * 3 * U * 4);
  S.dbias = arena_alloc((uint64_t)2 * 3 * U * 4);
  if (!dh || !dWx || !dWh || !dbx || !dbh || !S.dkernel || !S.drec || !S.dbias) return 0;
  zero_f32(dh, B * Up), zero_f32(dWx, Fp * G), zero_f32(dWh, Up * G), zero_f32(dbx, G), zero_f32(dbh, G);
  for (int i = 0; i < B; i++) {
    const int b = S.perm[i];
    for (int j = 0; j < U; j++) dh[i * Up + j] = S.dhT[b * U + j];
  }

  const vf one = splat(1.0f);
  f32 *dGx = S.Ga, *dGh = S.Gb;
  for (int t = S.tmax - 1; t >= 0; t--) {
    const int m = S.nact[t];
    const uint32_t r0 = (uint32_t)S.rowoff[t];
    const f32 *Xt = S.X + (uint64_t)r0 * Fp, *Ht = S.H + (uint64_t)r0 * Up;
    for (int i = 0; i < m; i++) {
      const uint32_t gr = (r0 + i) * Up;
      const f32 *zs = S.Z + gr, *rs = S.R + gr, *ns = S.N + gr, *ghs = S.GHN + gr, *h = Ht + i * Up;
      f32 *dhi = dh + i * Up, *gx = dGx + i * G, *gh = dGh + i * G;
      for (int j = 0; j < Up; j += 4) {
        vf d = ld(dhi + j), z = ld(zs + j), r = ld(rs + j), n = ld(ns + j), ghn = ld(ghs + j);
        vf dn = mul(mul(d, sub(one, z)), sub(one, mul(n, n)));      /* dL/d(n pre-activation) */
        vf dz = mul(mul(d, sub(ld(h + j), n)), mul(z, sub(one, z))); /* dL/d(z pre-activation) */
        vf dr = mul(mul(dn, ghn), mul(r, sub(one, r)));              /* dL/d(r pre-activation) */
        vf dghn = mul(dn, r);                                        /* dL/d(h Un + bhn) */
        st(gx + j, dz), st(gx + Up + j, dr), st(gx + 2 * Up + j, dn);
        st(gh + j, dz), st(gh + Up + j, dr), st(gh + 2 * Up + j, dghn);
        st(dbx + j, add(ld(dbx + j), dz)), st(dbx + Up + j, add(ld(dbx + Up + j), dr));
        st(dbx + 2 * Up + j, add(ld(dbx + 2 * Up + j), dn));
        st(dbh + j, add(ld(dbh + j), dz)), st(dbh + Up + j, add(ld(dbh + Up + j), dr));
        st(dbh + 2 * Up + j, add(ld(dbh + 2 * Up + j), dghn));
        st(dhi + j, mul(d, z)); /* direct path; the recurrent path is added by the GEMM below */
      }
    }
    gemm_ab(m, Up, G, dGh, G, S.WhT, Up, 0, dh, Up, 1); /* dh_{t} = dh z + dGh Wh^T */
    gemm_atb(Up, G, m, Ht, Up, dGh, G, dWh, G);          /* dWh += h_t^T dGh */
    gemm_atb(Fp, G, m, Xt, Fp, dGx, G, dWx, G);          /* dWx += x_t^T dGx */
  }

  for (int g = 0; g < 3; g++)
    for (int j = 0; j < U; j++) {
      for (int f = 0; f < F; f++) S.dkernel[f * 3 * U + g * U + j] = dWx[f * G + g * Up + j];
      for (int k = 0; k < U; k++) S.drec[k * 3 * U + g * U + j] = dWh[k * G + g * Up + j];
      S.dbias[g * U + j] = dbx[g * Up + j];
      S.dbias[3 * U + g * U + j] = dbh[g * Up + j];
    }
  return 1;
}
