package world

import (
	"math"

	"github.com/bangfu/cabinet/firmware/infer"
)

// OracleUnitSpread is the RMS offset of a unit from its nominal weight, as
// a fraction of TolG, over the world's products: the fill bias (uniform in
// ±0.3, variance 0.03), the scatter σ 0.4 (variance 0.16) and the 3 % of
// units near the limit (mean square ≈ 0.77), clipped at ±1; about 0.45.
// TestOracleUnitSpread checks it against drawn units.
const OracleUnitSpread = 0.45

// OracleOptions are infer's options set to the world's true rates where
// Options has a matching knob, for planogram p; everything else (K,
// MinNoiseG, search caps and the decision rule) keeps its default.
//
//   - UnitSpread: OracleUnitSpread (the true RMS unit offset / TolG).
//   - DriftG: the planogram's drift σ.
//   - CreepFrac: the RMS of the creep fraction f ~ U[0, MaxCreepFrac],
//     MaxCreepFrac/√3 (the world's creep is a one-sided lag, which the
//     model's zero-mean σ does not capture).
//   - TouchedShelves: the expected shelves bought from per session (the
//     model divides it by the shelf count).
//   - TakeMean: units per shelf bought from, for the ordinary-like classes.
//   - BulkP, BulkMean: the big class's share of shelves bought from, and
//     its units per shelf.
//   - MoveP: MovePct/100 (one unit moved per moving session).
//   - ObjectP: ObjectPct/100 spread over the shelves; ObjectMinG and
//     ObjectMaxG: the lightest and heaviest personal object; ObjectGoneP
//     off (-1), since no shopper in the world takes an object away.
//   - MiscountP: half of MiscountShelfP (a shelf holding one unit more than
//     its books says; the other half holds one fewer).
//   - StillMissP: SwapStillP, the chance that a worked shelf looks still;
//     RiseMissP: SetDownUnseenP, the chance that a set-down shows no rise;
//     RiseFalseP: HandRestP/(1−SetDownUnseenP), how much likelier a rise is
//     on a shelf only lifted from than on one something was set down on
//     (the model has one knob for every shelf that rose: an untouched
//     shelf's false touches, a lean's rise and jolts have none of their
//     own).
//   - GrabP: the mean of the light, mid and heavy grab chances (the model
//     has one for every product); LiftHideP off (-1): the world never
//     hides a shelf's first lift; LiftMissP: LiftMergeP; LiftExtraP:
//     LiftDragP; RisePutBackP: the put-backs among the rises on shelves
//     where nothing else was set down (put-backs against resting hands).
//
// Put-backs and leans have no knob: a put-back cancels in the model, and a
// lean's hysteresis is not modelled.
func OracleOptions(p Planogram) *infer.Options {
	n := float64(len(p.Shelves))
	touched := expectedShelvesTouched()
	lo, hi := objectRange()
	return &infer.Options{
		UnitSpread:     OracleUnitSpread,
		DriftG:         p.DriftG,
		CreepFrac:      MaxCreepFrac / math.Sqrt(3),
		TouchedShelves: touched,
		TakeMean:       ordinaryUnits() / ordinaryShelves(),
		BulkP:          BigPct / 100.0 * bigShelves() / touched,
		BulkMean:       bigUnits() / bigShelves(),
		MoveP:          MovePct / 100.0,
		ObjectP:        ObjectPct / 100.0 / n,
		ObjectGoneP:    -1,
		ObjectMinG:     lo,
		ObjectMaxG:     hi,
		MiscountP:      MiscountShelfP / 2,
		StillMissP:     SwapStillP,
		RiseMissP:      SetDownUnseenP,
		RiseFalseP:     HandRestP / (1 - SetDownUnseenP),
		GrabP:          (GrabLightP + GrabMidP + GrabHeavyP) / 3,
		LiftHideP:      -1,
		LiftMissP:      LiftMergeP,
		LiftExtraP:     LiftDragP,
		RisePutBackP:   risePutBackShare(),
	}
}

// risePutBackShare is the share of put-backs among the rises, outside a
// jolt, on shelves where nothing else was set down: a put-back rises its
// shelf unless unseen, a shelf only lifted from rises with HandRestP.
func risePutBackShare() float64 {
	back := PutBackPct / 100.0 * (1 - SetDownUnseenP)
	hands := expectedShelvesTouched() * HandRestP
	return back / (back + hands)
}

// ordinaryUnits is the mean units of an ordinary purchase.
func ordinaryUnits() float64 {
	var sum, n float64
	for i, w := range ordinaryUnitWeights {
		sum += w * float64(i+1)
		n += w
	}
	return sum / n
}

// ordinaryShelves is the mean shelves an ordinary purchase takes from.
func ordinaryShelves() float64 {
	var n float64
	for _, w := range ordinaryUnitWeights {
		n += w
	}
	multi := 1 - ordinaryUnitWeights[0]/n
	return 1 + multi*TwoShelfPct/100
}

// bigUnits and bigShelves are the means of a big purchase.
func bigUnits() float64   { return (MinBig + MaxBig) / 2.0 }
func bigShelves() float64 { return (1 + MaxBigShelves) / 2.0 }

// expectedShelvesTouched is the mean shelves bought from per session over
// the class mix.
func expectedShelvesTouched() float64 {
	const ordinaryLike = 100 - BigPct - NothingPct
	return (ordinaryLike*ordinaryShelves() + BigPct*bigShelves()) / 100
}

// objectRange is the lightest and heaviest personal object.
func objectRange() (lo, hi float64) {
	lo, hi = math.Inf(1), 0
	for _, k := range objectKinds {
		lo, hi = min(lo, k.lo), max(hi, k.hi)
	}
	return lo, hi
}
