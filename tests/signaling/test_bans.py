from camgrid.signaling.bans import BanList


def test_ban_after_n_failures_within_the_window_and_expiry():
    now = [0.0]
    bans = BanList(3, window_s=10, duration_s=60, clock=lambda: now[0])
    assert not bans.failure("1.2.3.4")
    now[0] = 5
    assert not bans.failure("1.2.3.4")
    now[0] = 9
    assert bans.failure("1.2.3.4")
    assert bans.is_banned("1.2.3.4") and bans.active() == 1 and bans.bans_total == 1
    now[0] = 70
    assert not bans.is_banned("1.2.3.4")


def test_failures_outside_the_window_do_not_add_up():
    now = [0.0]
    bans = BanList(3, window_s=10, duration_s=60, clock=lambda: now[0])
    for t in (0, 11, 22, 33):
        now[0] = t
        assert not bans.failure("dev")
    assert not bans.is_banned("dev")


def test_success_clears_the_count_and_memory_is_bounded():
    bans = BanList(2, window_s=10, duration_s=60, clock=lambda: 0.0, max_keys=100)
    bans.failure("a")
    bans.success("a")
    assert not bans.failure("a")
    for i in range(1000):
        bans.failure(f"k{i}")
    assert len(bans._recent) <= 100
