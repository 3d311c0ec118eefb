-- Enclosure managers of two kinds: 'oem' (lightsout's own NetFn 0x30
-- enclosure commands, what `lightsout sim` speaks) and 'ipmb' (standard
-- IPMI bridging: Send Message to each blade's controller on the enclosure
-- manager's IPMB). ipmb is the slot-to-address rule of an 'ipmb'
-- enclosure: "0x82+2" (slot 1 at 0x82, each next slot 2 further) or a list
-- "0x82,0x84,0x8a" (slot 1, 2, 3). Existing enclosures keep the OEM path.

ALTER TABLE enclosures ADD COLUMN kind TEXT NOT NULL DEFAULT 'oem';
ALTER TABLE enclosures ADD COLUMN ipmb TEXT NOT NULL DEFAULT '';
