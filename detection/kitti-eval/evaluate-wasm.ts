/**
 * The hot loops of evaluate.ts (packing a class, pass 1, pass 2) as a WebAssembly kernel, statement for statement
 * and in the same double arithmetic, so that results are identical (the tests compare both on synthetic sets). The
 * JavaScript versions in evaluate.ts stay the reference and take over when the kernel's memory would be too large.
 *
 * Why: in a command-line run these loops run once, mostly in V8's interpreter and while its optimising compiler
 * works; the WebAssembly baseline compiler makes machine code of them almost at once (figures in docs/kitti-eval.md).
 *
 * Memory: a header of 64 i32 slots at 0 (array addresses written by JavaScript, counts written by the kernel), then
 * the arrays, placed by JavaScript.
 */
import { buildModule, F64, FunctionBuilder, I32, Op } from './wasm-emit.js';
import { TypeCode, type KittiBoxTable } from './box-table.js';
import { EVAL_WASM } from './wasm-binaries.js';
import type { ScannedColumns } from './scan-wasm.js';

/** Header slots (i32 index). */
const enum H {
  nImages = 0,
  gtStartIn,
  gtType,
  gtBox,
  gtOcc,
  gtTrunc,
  detStartIn,
  detType,
  detBox,
  detScore,
  gtStart,
  gtRow,
  gtNeighbour,
  gtHeight,
  pGtOcc,
  pGtTrunc,
  detStart,
  detRow,
  detOfClass,
  detIntHeight,
  pDetScore,
  detInDontCare,
  detConnected,
  candStart,
  candDet,
  candIou,
  ignGt,
  ignDet,
  assigned,
  v,
  thresholds,
  dTp,
  dFp,
  joinsAt,
  events,
  /** The block allocTables reserves (read by JavaScript only). */
  tables,
  // Written by the kernel.
  nGt = 40,
  nDet,
  maxDets,
  candBound,
  nCand,
  nGtValid,
}

type E = () => void;

/** Helpers over one function: loops with labels, array loads and stores at (base local + index << shift). */
class Emitter {
  constructor(readonly f: FunctionBuilder) {}

  L = (x: number): E => () => void this.f.get(x);
  C = (v: number): E => () => void this.f.i32(v);

  /** A local holding header slot k. */
  hdr(k: H): number {
    const x = this.f.local(I32);
    this.f.i32(0).mem(Op.i32_load, 2, 4 * k).set(x);
    return x;
  }

  setHdr(k: H, value: E): void {
    this.f.i32(0);
    value();
    this.f.mem(Op.i32_store, 2, 4 * k);
  }

  private at(base: number, idx: E, shift: number): void {
    this.f.get(base);
    idx();
    if (shift > 0) this.f.i32(shift).op(Op.i32_shl);
    this.f.op(Op.i32_add);
  }

  ldI = (base: number, idx: E): E => () => void (this.at(base, idx, 2), this.f.mem(Op.i32_load, 2));
  ldF = (base: number, idx: E, offset = 0): E => () => void (this.at(base, idx, 3), this.f.mem(Op.f64_load, 3, offset));
  ldU8 = (base: number, idx: E): E => () => void (this.at(base, idx, 0), this.f.mem(Op.i32_load8_u, 0));
  ldS8 = (base: number, idx: E): E => () => void (this.at(base, idx, 0), this.f.mem(Op.i32_load8_s, 0));

  stI(base: number, idx: E, value: E): void {
    this.at(base, idx, 2);
    value();
    this.f.mem(Op.i32_store, 2);
  }

  stF(base: number, idx: E, value: E): void {
    this.at(base, idx, 3);
    value();
    this.f.mem(Op.f64_store, 3);
  }

  st8(base: number, idx: E, value: E): void {
    this.at(base, idx, 0);
    value();
    this.f.mem(Op.i32_store8, 0);
  }

  inc(x: number): void {
    this.f.get(x).i32(1).op(Op.i32_add).set(x);
  }

  /** for (x = from; x < to; x++) body(cont, brk): `jump(br, cont)` continues, `jump(br, brk)` breaks. */
  forRange(x: number, from: E, to: E, body: (cont: number, brk: number) => void): void {
    const f = this.f;
    from();
    f.set(x);
    const brk = f.open(Op.block);
    const top = f.open(Op.loop);
    f.get(x);
    to();
    f.op(Op.i32_ge_s).jump(Op.br_if, brk);
    const cont = f.open(Op.block);
    body(cont, brk);
    f.close();
    this.inc(x);
    f.jump(Op.br, top).close().close();
  }

  /** if (cond) then() [else otherwise()]. */
  when(cond: E, then: () => void, otherwise?: () => void): void {
    cond();
    this.f.open(Op.if);
    then();
    if (otherwise !== undefined) {
      this.f.op(Op.else);
      otherwise();
    }
    this.f.close();
  }
}

const FN_BOX_IOU = 4;
const FN_OVER_FIRST = 5;

/** (int)|y1 - y2| of the box whose x1 is at byte address a. */
function intHeight(e: Emitter, a: E): void {
  a();
  e.f.mem(Op.f64_load, 3, 8);
  a();
  e.f.mem(Op.f64_load, 3, 24).op(Op.f64_sub, Op.f64_abs, Op.f64_trunc);
}

/** count(code, neighbour, maxMinHeight): gtStart, detStart, nGt, nDet, maxDets, candBound (packClass's first loop). */
function countFunction(): FunctionBuilder {
  const f = new FunctionBuilder('count', [I32, I32, F64], [I32]);
  const e = new Emitter(f);
  const [code, neighbour, maxMinHeight] = [0, 1, 2];
  const n = e.hdr(H.nImages);
  const gtStartIn = e.hdr(H.gtStartIn);
  const gtType = e.hdr(H.gtType);
  const detStartIn = e.hdr(H.detStartIn);
  const detType = e.hdr(H.detType);
  const detBox = e.hdr(H.detBox);
  const gtStart = e.hdr(H.gtStart);
  const detStart = e.hdr(H.detStart);
  const [i, r, t, nGt, nDet, maxDets, g0, nd, bound] = f.locals(I32, 9);
  const boundF = f.local(F64); // in doubles: a product of two counts can overflow i32
  e.forRange(i, e.C(0), e.L(n), () => {
    e.stI(gtStart, e.L(i), e.L(nGt));
    e.stI(detStart, e.L(i), e.L(nDet));
    f.get(nGt).set(g0);
    e.forRange(r, e.ldI(gtStartIn, e.L(i)), e.ldI(gtStartIn, () => f.get(i).i32(1).op(Op.i32_add)), () => {
      e.ldU8(gtType, e.L(r))();
      f.tee(t).get(code).op(Op.i32_eq).get(t).get(neighbour).op(Op.i32_eq, Op.i32_or);
      f.open(Op.if);
      e.inc(nGt);
      f.close();
    });
    e.forRange(r, e.ldI(detStartIn, e.L(i)), e.ldI(detStartIn, () => f.get(i).i32(1).op(Op.i32_add)), () => {
      e.ldU8(detType, e.L(r))();
      f.get(code).op(Op.i32_eq);
      intHeight(e, () => f.get(detBox).get(r).i32(5).op(Op.i32_shl, Op.i32_add));
      f.get(maxMinHeight).op(Op.f64_lt, Op.i32_or);
      f.open(Op.if);
      e.inc(nDet);
      f.close();
    });
    f.get(nDet);
    e.ldI(detStart, e.L(i))();
    f.op(Op.i32_sub).set(nd);
    e.when(() => f.get(nd).get(maxDets).op(Op.i32_gt_s), () => void f.get(nd).set(maxDets));
    f.get(boundF).get(nGt).get(g0).op(Op.i32_sub, Op.f64_convert_i32_s).get(nd).op(Op.f64_convert_i32_s, Op.f64_mul, Op.f64_add).set(boundF);
  });
  e.stI(gtStart, e.L(n), e.L(nGt));
  e.stI(detStart, e.L(n), e.L(nDet));
  e.setHdr(H.nGt, e.L(nGt));
  e.setHdr(H.nDet, e.L(nDet));
  e.setHdr(H.maxDets, e.L(maxDets));
  // -1 when the candidates could not be addressed (the caller then uses the JavaScript evaluator).
  e.when(
    () => void f.get(boundF).f64(MAX_CANDIDATES).op(Op.f64_gt),
    () => void f.i32(-1).set(bound),
    () => void f.get(boundF).op(Op.i32_trunc_f64_s).set(bound),
  );
  e.setHdr(H.candBound, e.L(bound));
  f.get(bound);
  return f;
}

/** pack(code, neighbour, minOverlap, maxMinHeight): the rest of packClass; returns the number of candidates. */
function packFunction(): FunctionBuilder {
  const f = new FunctionBuilder('pack', [I32, I32, F64, F64], [I32]);
  const e = new Emitter(f);
  const [code, neighbour, minOverlap, maxMinHeight] = [0, 1, 2, 3];
  const n = e.hdr(H.nImages);
  const gtStartIn = e.hdr(H.gtStartIn);
  const gtType = e.hdr(H.gtType);
  const gtBox = e.hdr(H.gtBox);
  const gtOcc = e.hdr(H.gtOcc);
  const gtTrunc = e.hdr(H.gtTrunc);
  const detStartIn = e.hdr(H.detStartIn);
  const detType = e.hdr(H.detType);
  const detBox = e.hdr(H.detBox);
  const detScore = e.hdr(H.detScore);
  const gtStart = e.hdr(H.gtStart);
  const gtRow = e.hdr(H.gtRow);
  const gtNeighbour = e.hdr(H.gtNeighbour);
  const gtHeight = e.hdr(H.gtHeight);
  const pGtOcc = e.hdr(H.pGtOcc);
  const pGtTrunc = e.hdr(H.pGtTrunc);
  const detStart = e.hdr(H.detStart);
  const detRow = e.hdr(H.detRow);
  const detOfClass = e.hdr(H.detOfClass);
  const detIntHeight = e.hdr(H.detIntHeight);
  const pDetScore = e.hdr(H.pDetScore);
  const detInDontCare = e.hdr(H.detInDontCare);
  const detConnected = e.hdr(H.detConnected);
  const candStart = e.hdr(H.candStart);
  const candDet = e.hdr(H.candDet);
  const candIou = e.hdr(H.candIou);
  const [i, r, c, t, gEnd, dEnd, gk, dk, nCand, ofClass, d0, nd, g, j, gb] = f.locals(I32, 15);
  const h = f.local(F64);
  const o = f.local(F64);
  const next = (x: number): E => () => void f.get(x).i32(1).op(Op.i32_add);
  e.forRange(i, e.C(0), e.L(n), () => {
    e.ldI(gtStartIn, next(i))();
    f.set(gEnd);
    e.forRange(r, e.ldI(gtStartIn, e.L(i)), e.L(gEnd), (cont) => {
      e.ldU8(gtType, e.L(r))();
      f.set(t);
      f.get(t).get(code).op(Op.i32_ne).get(t).get(neighbour).op(Op.i32_ne, Op.i32_and).jump(Op.br_if, cont);
      e.stI(gtRow, e.L(gk), e.L(r));
      e.st8(gtNeighbour, e.L(gk), () => void f.get(t).get(code).op(Op.i32_ne));
      e.stF(gtHeight, e.L(gk), () => {
        e.ldF(gtBox, () => void f.get(r).i32(2).op(Op.i32_shl), 24)();
        e.ldF(gtBox, () => void f.get(r).i32(2).op(Op.i32_shl), 8)();
        f.op(Op.f64_sub);
      });
      e.stF(pGtOcc, e.L(gk), e.ldF(gtOcc, e.L(r)));
      e.stF(pGtTrunc, e.L(gk), e.ldF(gtTrunc, e.L(r)));
      e.inc(gk);
    });
    e.ldI(detStartIn, next(i))();
    f.set(dEnd);
    e.forRange(r, e.ldI(detStartIn, e.L(i)), e.L(dEnd), (cont) => {
      e.ldU8(detType, e.L(r))();
      f.get(code).op(Op.i32_eq).set(ofClass);
      intHeight(e, () => f.get(detBox).get(r).i32(5).op(Op.i32_shl, Op.i32_add));
      f.set(h);
      f.get(ofClass).op(Op.i32_eqz).get(h).get(maxMinHeight).op(Op.f64_ge, Op.i32_and).jump(Op.br_if, cont);
      e.stI(detRow, e.L(dk), e.L(r));
      e.st8(detOfClass, e.L(dk), e.L(ofClass));
      e.stF(detIntHeight, e.L(dk), e.L(h));
      e.stF(pDetScore, e.L(dk), e.ldF(detScore, e.L(r)));
      e.st8(detInDontCare, e.L(dk), e.C(0));
      e.st8(detConnected, e.L(dk), e.C(0));
      e.forRange(c, e.ldI(gtStartIn, e.L(i)), e.L(gEnd), (contC, brkC) => {
        e.ldU8(gtType, e.L(c))();
        f.i32(TypeCode.DONTCARE).op(Op.i32_ne).jump(Op.br_if, contC);
        f.get(detBox).get(r).i32(5).op(Op.i32_shl, Op.i32_add);
        f.get(gtBox).get(c).i32(5).op(Op.i32_shl, Op.i32_add);
        f.call(FN_OVER_FIRST).get(minOverlap).op(Op.f64_gt);
        f.open(Op.if);
        e.st8(detInDontCare, e.L(dk), e.C(1));
        f.jump(Op.br, brkC);
        f.close();
      });
      e.inc(dk);
    });
    e.ldI(detStart, e.L(i))();
    f.set(d0);
    e.ldI(detStart, next(i))();
    f.get(d0).op(Op.i32_sub).set(nd);
    e.forRange(g, e.ldI(gtStart, e.L(i)), e.ldI(gtStart, next(i)), () => {
      e.stI(candStart, e.L(g), e.L(nCand));
      e.ldI(gtRow, e.L(g))();
      f.i32(5).op(Op.i32_shl).get(gtBox).op(Op.i32_add).set(gb);
      e.forRange(j, e.C(0), e.L(nd), (contJ) => {
        e.ldI(detRow, () => void f.get(d0).get(j).op(Op.i32_add))();
        f.i32(5).op(Op.i32_shl).get(detBox).op(Op.i32_add);
        f.get(gb).call(FN_BOX_IOU).tee(o).get(minOverlap).op(Op.f64_gt, Op.i32_eqz).jump(Op.br_if, contJ);
        e.stI(candDet, e.L(nCand), e.L(j));
        e.stF(candIou, e.L(nCand), e.L(o));
        e.inc(nCand);
        e.st8(detConnected, () => void f.get(d0).get(j).op(Op.i32_add), e.C(1));
      });
    });
  });
  e.ldI(gtStart, e.L(n))();
  f.set(g);
  e.stI(candStart, e.L(g), e.L(nCand));
  e.setHdr(H.nCand, e.L(nCand));
  f.get(nCand);
  return f;
}

/** pass1(minHeight, maxOcclusion, maxTruncation): cleanData and pass 1 of evaluateDifficulty; returns nv. */
function pass1Function(): FunctionBuilder {
  const f = new FunctionBuilder('pass1', [F64, F64, F64], [I32]);
  const e = new Emitter(f);
  const [minHeight, maxOcc, maxTrunc] = [0, 1, 2];
  const n = e.hdr(H.nImages);
  const gtStart = e.hdr(H.gtStart);
  const gtNeighbour = e.hdr(H.gtNeighbour);
  const gtHeight = e.hdr(H.gtHeight);
  const pGtOcc = e.hdr(H.pGtOcc);
  const pGtTrunc = e.hdr(H.pGtTrunc);
  const detStart = e.hdr(H.detStart);
  const detOfClass = e.hdr(H.detOfClass);
  const detIntHeight = e.hdr(H.detIntHeight);
  const detScore = e.hdr(H.pDetScore);
  const candStart = e.hdr(H.candStart);
  const candDet = e.hdr(H.candDet);
  const ignGt = e.hdr(H.ignGt);
  const ignDet = e.hdr(H.ignDet);
  const assigned = e.hdr(H.assigned);
  const v = e.hdr(H.v);
  const [g, d, i, d0, nd, c, j, detIdx, nv, nGtValid, nGtTotal, nDetTotal, k] = f.locals(I32, 13);
  const best = f.local(F64);
  const dj = (): void => void f.get(d0).get(j).op(Op.i32_add);
  e.ldI(gtStart, e.L(n))();
  f.set(nGtTotal);
  e.ldI(detStart, e.L(n))();
  f.set(nDetTotal);
  e.forRange(g, e.C(0), e.L(nGtTotal), () => {
    // filtered = occ > maxOcc || trunc > maxTrunc || height <= minHeight
    e.ldF(pGtOcc, e.L(g))();
    f.get(maxOcc).op(Op.f64_gt);
    e.ldF(pGtTrunc, e.L(g))();
    f.get(maxTrunc).op(Op.f64_gt, Op.i32_or);
    e.ldF(gtHeight, e.L(g))();
    f.get(minHeight).op(Op.f64_le, Op.i32_or);
    e.ldU8(gtNeighbour, e.L(g))();
    f.op(Op.i32_or, Op.i32_eqz);
    f.open(Op.if);
    e.st8(ignGt, e.L(g), e.C(0));
    e.inc(nGtValid);
    f.op(Op.else);
    e.st8(ignGt, e.L(g), e.C(1));
    f.close();
  });
  e.forRange(d, e.C(0), e.L(nDetTotal), () => {
    e.st8(ignDet, e.L(d), () => {
      // detIntHeight < minHeight ? 1 : detOfClass ? 0 : -1
      f.i32(1);
      e.ldU8(detOfClass, e.L(d))();
      f.i32(1).op(Op.i32_sub); // 0 or -1
      e.ldF(detIntHeight, e.L(d))();
      f.get(minHeight).op(Op.f64_lt, Op.select);
    });
  });
  e.forRange(i, e.C(0), e.L(n), (contI) => {
    e.ldI(detStart, e.L(i))();
    f.set(d0);
    e.ldI(detStart, () => void f.get(i).i32(1).op(Op.i32_add))();
    f.get(d0).op(Op.i32_sub).tee(nd).op(Op.i32_eqz).jump(Op.br_if, contI);
    e.forRange(k, e.C(0), e.L(nd), () => e.st8(assigned, e.L(k), e.C(0)));
    e.forRange(g, e.ldI(gtStart, e.L(i)), e.ldI(gtStart, () => void f.get(i).i32(1).op(Op.i32_add)), (contG) => {
      f.i32(-1).set(detIdx).f64(-10000).set(best);
      e.forRange(c, e.ldI(candStart, e.L(g)), e.ldI(candStart, () => void f.get(g).i32(1).op(Op.i32_add)), (contC) => {
        e.ldI(candDet, e.L(c))();
        f.set(j);
        e.ldS8(ignDet, dj)();
        f.i32(-1).op(Op.i32_eq);
        e.ldU8(assigned, e.L(j))();
        f.op(Op.i32_or).jump(Op.br_if, contC);
        e.ldF(detScore, dj)();
        f.get(best).op(Op.f64_gt);
        f.open(Op.if);
        f.get(j).set(detIdx);
        e.ldF(detScore, dj)();
        f.set(best);
        f.close();
      });
      f.get(detIdx).i32(0).op(Op.i32_lt_s).jump(Op.br_if, contG);
      e.st8(assigned, e.L(detIdx), e.C(1));
      e.ldU8(ignGt, e.L(g))();
      e.ldS8(ignDet, () => void f.get(d0).get(detIdx).op(Op.i32_add))();
      f.op(Op.i32_or, Op.i32_eqz);
      f.open(Op.if);
      e.stF(v, e.L(nv), e.ldF(detScore, () => void f.get(d0).get(detIdx).op(Op.i32_add)));
      e.inc(nv);
      f.close();
    });
  });
  e.setHdr(H.nGtValid, e.L(nGtValid));
  f.get(nv);
  return f;
}

/** pass2(nThr): pass2Image of evaluate.ts for every image; adds to dTp and dFp (zeroed by the caller). */
function pass2Function(): FunctionBuilder {
  const f = new FunctionBuilder('pass2', [I32], [I32]);
  const e = new Emitter(f);
  const [nThr] = [0];
  const n = e.hdr(H.nImages);
  const gtStart = e.hdr(H.gtStart);
  const detStart = e.hdr(H.detStart);
  const candStart = e.hdr(H.candStart);
  const candDet = e.hdr(H.candDet);
  const candIou = e.hdr(H.candIou);
  const detScore = e.hdr(H.pDetScore);
  const detInDontCare = e.hdr(H.detInDontCare);
  const detConnected = e.hdr(H.detConnected);
  const ignGt = e.hdr(H.ignGt);
  const ignDet = e.hdr(H.ignDet);
  const assigned = e.hdr(H.assigned);
  const thresholds = e.hdr(H.thresholds);
  const dTp = e.hdr(H.dTp);
  const dFp = e.hdr(H.dFp);
  const joinsAt = e.hdr(H.joinsAt);
  const events = e.hdr(H.events);
  const [i, d0, nd, j, ign, lo, hi, mid, nEvents, k, m, prevTp, prevFp, ev, t, imgTp, imgFp, g, c, detIdx, aid] = f.locals(I32, 21);
  const score = f.local(F64);
  const maxOverlap = f.local(F64);
  const overlap = f.local(F64);
  const dj = (): void => void f.get(d0).get(j).op(Op.i32_add);
  const addTo = (arr: number, idx: number, value: E): void =>
    e.stF(arr, e.L(idx), () => {
      e.ldF(arr, e.L(idx))();
      value();
      f.op(Op.f64_convert_i32_s, Op.f64_add);
    });
  e.forRange(i, e.C(0), e.L(n), () => {
    e.ldI(detStart, e.L(i))();
    f.set(d0);
    e.ldI(detStart, () => void f.get(i).i32(1).op(Op.i32_add))();
    f.get(d0).op(Op.i32_sub).set(nd);
    f.i32(0).set(nEvents);
    e.forRange(j, e.C(0), e.L(nd), (contJ) => {
      e.ldS8(ignDet, dj)();
      f.tee(ign).i32(-1).op(Op.i32_eq);
      f.open(Op.if);
      e.stI(joinsAt, e.L(j), e.L(nThr));
      f.jump(Op.br, contJ);
      f.close();
      e.ldF(detScore, dj)();
      f.set(score);
      f.i32(0).set(lo).get(nThr).set(hi);
      const brk = f.open(Op.block);
      const top = f.open(Op.loop);
      f.get(lo).get(hi).op(Op.i32_ge_s).jump(Op.br_if, brk);
      f.get(lo).get(hi).op(Op.i32_add).i32(1).op(Op.i32_shr_u).set(mid);
      e.when(
        () => {
          e.ldF(thresholds, e.L(mid))();
          f.get(score).op(Op.f64_le);
        },
        () => void f.get(mid).set(hi),
        () => void f.get(mid).i32(1).op(Op.i32_add).set(lo),
      );
      f.jump(Op.br, top).close().close();
      e.stI(joinsAt, e.L(j), e.L(lo));
      f.get(lo).get(nThr).op(Op.i32_eq).jump(Op.br_if, contJ);
      e.ldU8(detConnected, dj)();
      f.op(Op.i32_eqz);
      f.open(Op.if);
      f.get(ign);
      e.ldU8(detInDontCare, dj)();
      f.op(Op.i32_or, Op.i32_eqz);
      f.open(Op.if);
      addTo(dFp, lo, e.C(1));
      f.close();
      f.jump(Op.br, contJ);
      f.close();
      // Insert lo into the sorted, distinct event list.
      f.get(nEvents).set(k);
      const brk2 = f.open(Op.block);
      const top2 = f.open(Op.loop);
      f.get(k).op(Op.i32_eqz).jump(Op.br_if, brk2);
      e.ldI(events, () => void f.get(k).i32(1).op(Op.i32_sub))();
      f.get(lo).op(Op.i32_le_s).jump(Op.br_if, brk2);
      f.get(k).i32(1).op(Op.i32_sub).set(k);
      f.jump(Op.br, top2).close().close();
      f.get(k).op(Op.i32_eqz);
      f.get(k).op(Op.i32_eqz);
      f.open(Op.if, I32);
      f.i32(0);
      f.op(Op.else);
      e.ldI(events, () => void f.get(k).i32(1).op(Op.i32_sub))();
      f.get(lo).op(Op.i32_ne);
      f.close();
      f.op(Op.i32_or);
      f.open(Op.if);
      // events[k + 1 .. nEvents] = events[k .. nEvents - 1], from the top.
      f.get(nEvents).set(m);
      const brk3 = f.open(Op.block);
      const top3 = f.open(Op.loop);
      f.get(m).get(k).op(Op.i32_le_s).jump(Op.br_if, brk3);
      e.stI(events, e.L(m), e.ldI(events, () => void f.get(m).i32(1).op(Op.i32_sub)));
      f.get(m).i32(1).op(Op.i32_sub).set(m);
      f.jump(Op.br, top3).close().close();
      e.stI(events, e.L(k), e.L(lo));
      e.inc(nEvents);
      f.close();
    });
    f.i32(0).set(prevTp).i32(0).set(prevFp);
    e.forRange(ev, e.C(0), e.L(nEvents), () => {
      e.ldI(events, e.L(ev))();
      f.set(t);
      e.forRange(k, e.C(0), e.L(nd), () => e.st8(assigned, e.L(k), e.C(0)));
      f.i32(0).set(imgTp);
      e.forRange(g, e.ldI(gtStart, e.L(i)), e.ldI(gtStart, () => void f.get(i).i32(1).op(Op.i32_add)), (contG) => {
        f.i32(-1).set(detIdx).f64(0).set(maxOverlap).i32(0).set(aid);
        e.forRange(c, e.ldI(candStart, e.L(g)), e.ldI(candStart, () => void f.get(g).i32(1).op(Op.i32_add)), (contC) => {
          e.ldI(candDet, e.L(c))();
          f.set(j);
          e.ldI(joinsAt, e.L(j))();
          f.get(t).op(Op.i32_gt_s);
          e.ldU8(assigned, e.L(j))();
          f.op(Op.i32_or).jump(Op.br_if, contC);
          e.ldS8(ignDet, dj)();
          f.set(ign);
          e.ldF(candIou, e.L(c))();
          f.set(overlap);
          f.get(overlap).get(maxOverlap).op(Op.f64_gt).get(aid).op(Op.i32_or).get(ign).op(Op.i32_eqz, Op.i32_and);
          f.open(Op.if);
          f.get(overlap).set(maxOverlap).get(j).set(detIdx).i32(0).set(aid);
          f.op(Op.else);
          f.get(detIdx).i32(0).op(Op.i32_lt_s).get(ign).i32(1).op(Op.i32_eq, Op.i32_and);
          f.open(Op.if);
          f.get(j).set(detIdx).i32(1).set(aid);
          f.close();
          f.close();
        });
        f.get(detIdx).i32(0).op(Op.i32_lt_s).jump(Op.br_if, contG);
        e.st8(assigned, e.L(detIdx), e.C(1));
        e.ldU8(ignGt, e.L(g))();
        e.ldS8(ignDet, () => void f.get(d0).get(detIdx).op(Op.i32_add))();
        f.op(Op.i32_or, Op.i32_eqz);
        f.open(Op.if);
        e.inc(imgTp);
        f.close();
      });
      f.i32(0).set(imgFp);
      e.forRange(j, e.C(0), e.L(nd), () => {
        // connected && ign == 0 && !assigned && joinsAt <= t && !inDontCare
        e.ldU8(detConnected, dj)();
        e.ldS8(ignDet, dj)();
        f.op(Op.i32_eqz, Op.i32_and);
        e.ldU8(assigned, e.L(j))();
        f.op(Op.i32_eqz, Op.i32_and);
        e.ldI(joinsAt, e.L(j))();
        f.get(t).op(Op.i32_le_s, Op.i32_and);
        e.ldU8(detInDontCare, dj)();
        f.op(Op.i32_eqz, Op.i32_and);
        f.open(Op.if);
        e.inc(imgFp);
        f.close();
      });
      addTo(dTp, t, () => void f.get(imgTp).get(prevTp).op(Op.i32_sub));
      addTo(dFp, t, () => void f.get(imgFp).get(prevFp).op(Op.i32_sub));
      f.get(imgTp).set(prevTp).get(imgFp).set(prevFp);
    });
  });
  f.i32(0);
  return f;
}

/** boxIou(a, b): the devkit's imageBoxOverlap(det, gt, -1) of the 4 doubles at byte addresses a and b. */
function boxFunction(name: string, overFirst: boolean): FunctionBuilder {
  const f = new FunctionBuilder(name, [I32, I32], [F64]);
  const [a, b] = [0, 1];
  const [ax1, ay1, ax2, ay2, bx1, by1, bx2, by2, w, h, inter] = f.locals(F64, 11);
  [ax1, ay1, ax2, ay2].forEach((x, k) => f.get(a).mem(Op.f64_load, 3, 8 * k).set(x));
  [bx1, by1, bx2, by2].forEach((x, k) => f.get(b).mem(Op.f64_load, 3, 8 * k).set(x));
  // x1 = ax1 < bx1 ? bx1 : ax1 (and so on), then w = x2 - x1, h = y2 - y1.
  f.get(bx2).get(ax2).get(ax2).get(bx2).op(Op.f64_gt, Op.select);
  f.get(bx1).get(ax1).get(ax1).get(bx1).op(Op.f64_lt, Op.select);
  f.op(Op.f64_sub).set(w);
  f.get(by2).get(ay2).get(ay2).get(by2).op(Op.f64_gt, Op.select);
  f.get(by1).get(ay1).get(ay1).get(by1).op(Op.f64_lt, Op.select);
  f.op(Op.f64_sub).set(h);
  f.get(w).f64(0).op(Op.f64_le).get(h).f64(0).op(Op.f64_le).op(Op.i32_or);
  f.open(Op.if);
  f.f64(0).op(Op.return);
  f.close();
  f.get(w).get(h).op(Op.f64_mul).set(inter);
  f.get(inter);
  f.get(ax2).get(ax1).op(Op.f64_sub).get(ay2).get(ay1).op(Op.f64_sub).op(Op.f64_mul);
  if (!overFirst) {
    f.get(bx2).get(bx1).op(Op.f64_sub).get(by2).get(by1).op(Op.f64_sub).op(Op.f64_mul);
    f.op(Op.f64_add).get(inter).op(Op.f64_sub);
  }
  f.op(Op.f64_div);
  return f;
}

interface EvalExports {
  memory: WasmMemory;
  count(code: number, neighbour: number, maxMinHeight: number): number;
  pack(code: number, neighbour: number, minOverlap: number, maxMinHeight: number): number;
  pass1(minHeight: number, maxOcclusion: number, maxTruncation: number): number;
  pass2(nThr: number): number;
}

/** The few WebAssembly JS-API members used (the project's lib settings do not declare them). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
let compiled: object | null = null;

/** Above this many bytes of kernel memory the JavaScript evaluator is used instead. */
const MAX_BYTES = 1 << 30;
/** At 12 bytes each, candidates beyond this cannot fit. */
const MAX_CANDIDATES = MAX_BYTES / 12;
const HEADER_BYTES = 256;

/** The kernel's bytes from its code above; wasm-binaries.ts holds them (the code runs slowly in a cold process). */
export function buildEvalWasm(): Uint8Array {
  return buildModule(
    [countFunction(), packFunction(), pass1Function(), pass2Function(), boxFunction('boxIou', false), boxFunction('overlapOverFirst', true)],
    1,
    true,
  );
}

/** The kernel with its memory and a bump allocator over it. */
export class EvalKernel {
  private readonly x: EvalExports;
  private top = HEADER_BYTES;
  /** Addresses of the columns allocTables adds beyond the kernel's: ground-truth score, detection truncation, occlusion. */
  private unused: [number, number, number] | null = null;

  /**
   * A kernel on a memory of its own, or on `memory` from byte `freeFrom` on (e.g. a finished scanner's, whose tables
   * `adoptTables` then uses where they are). Its header takes bytes [0, 256) of that memory.
   */
  constructor(memory?: WasmMemory, freeFrom = HEADER_BYTES) {
    compiled ??= new wasm.Module(Buffer.from(EVAL_WASM, 'base64'));
    const env = { memory: memory ?? new wasm.Memory({ initial: 1 }) };
    this.x = new wasm.Instance(compiled, { env }).exports as EvalExports;
    this.top = Math.ceil(Math.max(HEADER_BYTES, freeFrom) / 8) * 8;
  }

  get exports(): EvalExports {
    return this.x;
  }

  mark(): number {
    return this.top;
  }

  reset(mark: number): void {
    this.top = mark;
  }

  /** Reserves `bytes` (8-aligned) and stores the address in header slot `slot`; throws KernelTooLarge beyond MAX_BYTES. */
  alloc(slot: H, bytes: number): number {
    if (!(bytes >= 0)) throw new KernelTooLarge();
    const at = this.top;
    this.top += Math.ceil(bytes / 8) * 8;
    if (this.top > MAX_BYTES) throw new KernelTooLarge();
    const have = this.x.memory.buffer.byteLength;
    if (this.top > have) this.x.memory.grow(Math.ceil((Math.max(this.top, 2 * have) - have) / 65536));
    new Int32Array(this.x.memory.buffer, 0, 64)[slot] = at;
    return at;
  }

  header(slot: H): number {
    return new Int32Array(this.x.memory.buffer, 0, 64)[slot]!;
  }

  setHeader(slot: H, value: number): void {
    new Int32Array(this.x.memory.buffer, 0, 64)[slot] = value;
  }

  f64(at: number, n: number): Float64Array {
    return new Float64Array(this.x.memory.buffer, at, n);
  }

  /**
   * Room for the two tables in this memory (header slots gtStartIn .. detScore, as `load` sets them), for a reader to
   * fill in place of `load`'s copy; the columns the kernel does not read (ground-truth scores, detections' truncation
   * and occlusion) are allocated too, so that the tables are whole. The views are valid until the next allocation;
   * `loadedTables` gives them again. Throws KernelTooLarge beyond MAX_BYTES.
   */
  allocTables(nImages: number, gtRows: number, detRows: number): { groundTruth: KittiBoxTable; detections: KittiBoxTable } {
    this.setHeader(H.nImages, nImages);
    const layout: [H | null, number][] = [
      [H.gtStartIn, 4 * (nImages + 1)],
      [H.gtType, gtRows],
      [H.gtBox, 32 * gtRows],
      [H.gtOcc, 8 * gtRows],
      [H.gtTrunc, 8 * gtRows],
      [null, 8 * gtRows],
      [H.detStartIn, 4 * (nImages + 1)],
      [H.detType, detRows],
      [H.detBox, 32 * detRows],
      [null, 8 * detRows],
      [null, 8 * detRows],
      [H.detScore, 8 * detRows],
    ];
    // One allocation for all, so that no growth detaches the first views while the last are made.
    let bytes = 0;
    for (const [, b] of layout) bytes += Math.ceil(b / 8) * 8;
    let at = this.alloc(H.tables, bytes);
    const addresses = layout.map(([slot, b]) => {
      if (slot !== null) this.setHeader(slot, at);
      const here = at;
      at += Math.ceil(b / 8) * 8;
      return here;
    });
    this.unused = [addresses[5]!, addresses[9]!, addresses[10]!];
    // The row counts, where loadedTables reads them (the reader writes the same values).
    new Int32Array(this.x.memory.buffer, addresses[0]! + 4 * nImages, 1)[0] = gtRows;
    new Int32Array(this.x.memory.buffer, addresses[6]! + 4 * nImages, 1)[0] = detRows;
    return this.loadedTables();
  }

  /**
   * Takes a finished scanner's tables where they are (this kernel must be on its memory, from `cols.end` on): label
   * images 0 .. nImages - 1 then result images, rows from `start` (2 nImages + 1 entries). Only the two start arrays
   * are written (results' rebased to their first row).
   */
  adoptTables(nImages: number, start: Int32Array, cols: ScannedColumns): void {
    const g = start[nImages]!;
    const gtAt = this.alloc(H.gtStartIn, 4 * (nImages + 1));
    const detAt = this.alloc(H.detStartIn, 4 * (nImages + 1));
    const b = this.x.memory.buffer;
    new Int32Array(b, gtAt, nImages + 1).set(start.subarray(0, nImages + 1));
    const det = new Int32Array(b, detAt, nImages + 1);
    for (let i = 0; i <= nImages; i++) det[i] = start[nImages + i]! - g;
    this.setHeader(H.nImages, nImages);
    this.setHeader(H.gtType, cols.type);
    this.setHeader(H.gtBox, cols.box);
    this.setHeader(H.gtOcc, cols.occluded);
    this.setHeader(H.gtTrunc, cols.truncated);
    this.setHeader(H.detType, cols.type + g);
    this.setHeader(H.detBox, cols.box + 32 * g);
    this.setHeader(H.detScore, cols.score + 8 * g);
    this.unused = [cols.score, cols.truncated + 8 * g, cols.occluded + 8 * g];
  }

  /** The tables of `allocTables` or `adoptTables` (or `load`'s copies), as views of the current memory. */
  loadedTables(): { groundTruth: KittiBoxTable; detections: KittiBoxTable } {
    const b = this.x.memory.buffer;
    const n = this.header(H.nImages);
    const start = (slot: H): Int32Array => new Int32Array(b, this.header(slot), n + 1);
    const gtStart = start(H.gtStartIn);
    const detStart = start(H.detStartIn);
    const g = gtStart[n]!;
    const d = detStart[n]!;
    const f64 = (at: number, length: number): Float64Array => new Float64Array(b, at, length);
    const [gtScore, detTrunc, detOcc] = this.unused ?? [-1, -1, -1];
    return {
      groundTruth: {
        nImages: n,
        start: gtStart,
        type: new Uint8Array(b, this.header(H.gtType), g),
        box: f64(this.header(H.gtBox), 4 * g),
        occluded: f64(this.header(H.gtOcc), g),
        truncated: f64(this.header(H.gtTrunc), g),
        score: gtScore < 0 ? new Float64Array(g).fill(Number.NaN) : f64(gtScore, g),
      },
      detections: {
        nImages: n,
        start: detStart,
        type: new Uint8Array(b, this.header(H.detType), d),
        box: f64(this.header(H.detBox), 4 * d),
        truncated: detTrunc < 0 ? new Float64Array(d) : f64(detTrunc, d),
        occluded: detOcc < 0 ? new Float64Array(d) : f64(detOcc, d),
        score: f64(this.header(H.detScore), d),
      },
    };
  }

  /** Copies the two tables in (header slots gtStartIn .. detScore). */
  load(gt: KittiBoxTable, det: KittiBoxTable): void {
    const n = gt.nImages;
    this.setHeader(H.nImages, n);
    const put = <T extends Int32Array | Uint8Array | Float64Array>(slot: H, a: T): void => {
      const at = this.alloc(slot, a.byteLength);
      new (a.constructor as new (b: ArrayBuffer, at: number, n: number) => T)(this.x.memory.buffer, at, a.length).set(a);
    };
    put(H.gtStartIn, gt.start);
    put(H.gtType, gt.type);
    put(H.gtBox, gt.box);
    put(H.gtOcc, gt.occluded);
    put(H.gtTrunc, gt.truncated);
    put(H.detStartIn, det.start);
    put(H.detType, det.type);
    put(H.detBox, det.box);
    put(H.detScore, det.score);
  }
}

export class KernelTooLarge extends Error {
  constructor() {
    super('evaluation kernel memory limit');
  }
}

export { H as KernelSlot };
