"""Operations: video quality diagnosis, the alarm centre, maintenance, rates and KPIs."""
